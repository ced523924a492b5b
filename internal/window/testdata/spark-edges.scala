// Reproduces want.txt of before-epoch, uneven-slide and watermark-ms with
// Spark itself (checked with 4.2.0):
//
//   spark-shell --master 'local[1]' --conf spark.sql.session.timeZone=UTC \
//     --conf spark.sql.shuffle.partitions=1 -i spark-edges.scala
//
// (uneven-slide stops before the no-data batch Spark then runs.)
import org.apache.spark.sql._
import org.apache.spark.sql.functions._
import java.sql.Timestamp
spark.sparkContext.setLogLevel("ERROR")
implicit val sqlCtx: SQLContext = spark.sqlContext
import spark.implicits._
def us(u: Long) = { val t = new Timestamp(Math.floorDiv(u, 1000L)); t.setNanos((Math.floorMod(u, 1000000L) * 1000).toInt); t }
def run(name: String, mode: String, size: String, slide: String, delay: String, batches: Seq[Seq[(Long, String)]]) = {
  val input = org.apache.spark.sql.execution.streaming.runtime.MemoryStream[(Timestamp, String)]
  val df = input.toDF().toDF("ts", "k").withWatermark("ts", delay).groupBy(window($"ts", size, slide), $"k").count()
  val q = df.writeStream.outputMode(mode).foreachBatch { (b: DataFrame, id: Long) =>
    val rows = b.collect().map { r => val w = r.getStruct(0); s"[${w.getTimestamp(0).toInstant}, ${w.getTimestamp(1).toInstant}) ${r.get(1)} ${r.get(2)}" }.sorted
    println(s"OUT $name batch $id: " + rows.mkString(" | "))
    ()
  }.start()
  for (b <- batches) { input.addData(b.map { case (t, k) => (us(t), k) }); q.processAllAvailable(); Thread.sleep(1500); q.processAllAvailable() }
  q.stop()
  for (p <- q.recentProgress) println(s"PROGRESS $name batch ${p.batchId} input ${p.numInputRows} watermark ${p.eventTime.get("watermark")} dropped ${p.stateOperators.headOption.map(_.numRowsDroppedByWatermark).getOrElse(-1)} state ${p.stateOperators.headOption.map(_.numRowsTotal).getOrElse(-1)}")
}
val base = 1762538400000000L // 2025-11-07 18:00:00 UTC
run("before-epoch", "update", "1 minute", "30 seconds", "0 seconds", Seq(Seq(-1L -> "alice", 0L -> "bob", -30000000L -> "carol", -14182940000000L -> "eagle")))
run("uneven-slide", "update", "90 seconds", "1 minute", "0 seconds", Seq(Seq(base + 10000000L -> "alice", base + 45000000L -> "bob", base + 90000000L -> "carol", base + 89999000L -> "dave")))
run("watermark-ms", "append", "500 microseconds", "500 microseconds", "0 seconds", Seq(Seq(1000000L -> "x", 1000999L -> "x"), Seq(1001500L -> "x")))
System.exit(0)
