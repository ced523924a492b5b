// Reproduces want.txt of spark-guide-continuous (update) and
// spark-guide-complete (complete) with Spark itself (checked with 4.2.0):
//
//   spark-shell --master 'local[1]' --conf spark.sql.session.timeZone=UTC \
//     --conf spark.sql.shuffle.partitions=1 -i spark.scala
//
// Each group of events is one batch; processAllAvailable, a pause and
// processAllAvailable again let the no-data batch Spark runs after a
// watermark move happen before the next group.
import org.apache.spark.sql._
import org.apache.spark.sql.functions._
import java.sql.Timestamp
spark.sparkContext.setLogLevel("ERROR")
implicit val sqlCtx: SQLContext = spark.sqlContext
import spark.implicits._
def ts(s: String) = Timestamp.valueOf("2024-01-01 " + s + ":00")
for (mode <- Seq("update", "complete")) {
  // Spark 3.5: org.apache.spark.sql.execution.streaming.MemoryStream
  val input = org.apache.spark.sql.execution.streaming.runtime.MemoryStream[(Timestamp, String)]
  val df = input.toDF().toDF("ts", "word").withWatermark("ts", "10 minutes")
    .groupBy(window($"ts", "10 minutes", "5 minutes"), $"word").count()
  val q = df.writeStream.outputMode(mode).foreachBatch { (b: DataFrame, id: Long) =>
    val rows = b.collect().map { r => val w = r.getStruct(0); s"[${w.get(0)}, ${w.get(1)}) ${r.get(1)} ${r.get(2)}" }.sorted
    println(s"OUT $mode batch $id: " + rows.mkString(" | "))
    ()
  }.start()
  val batches = Seq(Seq("12:07" -> "dog", "12:08" -> "owl"), Seq("12:14" -> "dog", "12:09" -> "cat"),
    Seq("12:15" -> "cat", "12:08" -> "dog", "12:13" -> "owl", "12:21" -> "owl"),
    Seq("12:04" -> "donkey", "12:17" -> "owl"), Seq("12:04" -> "donkey"))
  for (b <- batches) {
    input.addData(b.map { case (t, w) => (ts(t), w) })
    q.processAllAvailable(); Thread.sleep(1500); q.processAllAvailable()
  }
  q.stop()
  for (p <- q.recentProgress) println(s"PROGRESS $mode batch ${p.batchId} input ${p.numInputRows} " +
    s"watermark ${p.eventTime.get("watermark")} dropped ${p.stateOperators.headOption.map(_.numRowsDroppedByWatermark).getOrElse(-1)} " +
    s"state ${p.stateOperators.headOption.map(_.numRowsTotal).getOrElse(-1)}")
}
System.exit(0)
