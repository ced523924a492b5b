package io.cordstream.bench.streams;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import java.io.File;
import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The seed's query as a Kafka Streams application: count the messages of
 * discord_messages per author_name in hopping windows of 1 minute advancing
 * by 30 seconds on message_timestamp, with 1 minute of grace, and write every
 * updated count to an output topic. The benchmark harness (bench/cmd/bench)
 * runs it on the topics it loaded, with exactly_once_v2 and with
 * at_least_once, beside cordstream analyze and Spark.
 *
 * <p>It prints "first" on stdout when it hands its first result to the
 * output topic, stops by itself once --records records have reached the
 * count (then closes, which flushes the caches and commits), and prints a
 * JSON summary as its last line. Everything else is Kafka Streams' defaults.
 */
public final class CountByAuthor {

    private CountByAuthor() {}

    static final Duration SIZE = Duration.ofMinutes(1);
    static final Duration ADVANCE = Duration.ofSeconds(30);
    static final Duration GRACE = Duration.ofMinutes(1);

    /** What the topology reports while it runs. */
    static final class Progress {
        final long want;
        final AtomicLong counted = new AtomicLong();
        final AtomicLong emitted = new AtomicLong();
        final AtomicBoolean first = new AtomicBoolean();
        final CountDownLatch done = new CountDownLatch(1);

        Progress(long want) {
            this.want = want;
        }

        void count() {
            if (counted.incrementAndGet() == want) {
                done.countDown();
            }
        }

        void emit() {
            emitted.incrementAndGet();
            if (first.compareAndSet(false, true)) {
                System.out.println("first");
                System.out.flush();
            }
        }
    }

    /** The event time of a record: its message_timestamp (-1 skips the record). */
    public static final class MessageTimestamp implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            return record.value() instanceof SeedMessage m ? m.timestampMs() : -1;
        }
    }

    /**
     * The topology: parse the value, key by author_name (a repartition
     * through the by-author topic, as groupBy would do), count in hopping
     * windows with grace, and send each updated count to output as a row.
     */
    static Topology topology(String input, String output, Progress progress) {
        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.ByteArray(), SeedMessage.jsonSerde())
                        .withTimestampExtractor(new MessageTimestamp())
                        .withName("messages"))
                .selectKey((k, m) -> m.authorName(), Named.as("key-by-author"))
                .repartition(Repartitioned.<String, SeedMessage>as("by-author")
                        .withKeySerde(Serdes.String())
                        .withValueSerde(SeedMessage.compactSerde()))
                .peek((k, m) -> progress.count(), Named.as("progress"))
                .groupByKey(Grouped.with(Serdes.String(), SeedMessage.compactSerde()))
                .windowedBy(TimeWindows.ofSizeAndGrace(SIZE, GRACE).advanceBy(ADVANCE))
                .count(Named.as("count"), Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts")
                        .withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.Long()))
                .toStream(Named.as("updates"))
                .map((w, n) -> KeyValue.pair(rowKey(w), row(w, n)), Named.as("rows"))
                .peek((k, v) -> progress.emit(), Named.as("emitted"))
                .to(output, Produced.with(Serdes.String(), Serdes.String()).withName("results"));
        return b.build();
    }

    /** A row's key: its window and author, as cordstream's results topic keys it. */
    static String rowKey(Windowed<String> w) {
        StringBuilder s = new StringBuilder(96);
        s.append("{\"window_start\":\"").append(Instant.ofEpochMilli(w.window().start()))
                .append("\",\"window_end\":\"").append(Instant.ofEpochMilli(w.window().end()))
                .append("\",\"author_name\":");
        appendJSON(s, w.key());
        return s.append('}').toString();
    }

    /** A row: its window, author and count, as cordstream's JSON lines write it. */
    static String row(Windowed<String> w, Long n) {
        StringBuilder s = new StringBuilder(112);
        s.append("{\"window_start\":\"").append(Instant.ofEpochMilli(w.window().start()))
                .append("\",\"window_end\":\"").append(Instant.ofEpochMilli(w.window().end()))
                .append("\",\"author_name\":");
        appendJSON(s, w.key());
        return s.append(",\"message_count\":").append(n).append('}').toString();
    }

    private static void appendJSON(StringBuilder s, String v) {
        if (v == null) {
            s.append("null");
            return;
        }
        s.append('"');
        JsonStringEncoder.getInstance().quoteAsString(v, s);
        s.append('"');
    }

    static final String USAGE = """
            Usage: CountByAuthor --brokers HOST:PORT --topic IN --output-topic OUT --application-id ID
                                 --records N [--guarantee exactly_once_v2|at_least_once] [--state-dir DIR]
                                 [--threads N] [--timeout-s S]

            Counts messages per author_name in hopping windows (1 min, advancing by 30 s, 1 min grace)
            from the start of IN, writes every updated count to OUT, and stops once N records reached
            the count. Prints "first" at the first result, then a JSON summary.
            """;

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("-h") || args[i].equals("--help")) {
                System.out.print(USAGE);
                return;
            }
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                usage("unexpected argument " + args[i]);
            }
            a.put(args[i].substring(2), args[++i]);
        }
        for (String k : new String[] {"brokers", "topic", "output-topic", "application-id", "records"}) {
            if (!a.containsKey(k)) {
                usage("--" + k + " is required");
            }
        }
        long want = Long.parseLong(a.get("records"));
        String guarantee = a.getOrDefault("guarantee", StreamsConfig.EXACTLY_ONCE_V2);
        if (!guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2) && !guarantee.equals(StreamsConfig.AT_LEAST_ONCE)) {
            usage("--guarantee " + guarantee + ": want exactly_once_v2 or at_least_once");
        }
        File stateDir = a.containsKey("state-dir") ? new File(a.get("state-dir"))
                : Files.createTempDirectory("cordstream-bench-streams").toFile();

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.get("application-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("brokers"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.getAbsolutePath());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(a.getOrDefault("threads", "1")));
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // There is no global state here; this only silences the warning that
        // the default will change in Kafka 5.
        p.put("processing.exception.handler.global.enabled", true);

        Progress progress = new Progress(want);
        KafkaStreams streams = new KafkaStreams(topology(a.get("topic"), a.get("output-topic"), progress), p);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        streams.setUncaughtExceptionHandler(e -> {
            failure.compareAndSet(null, e);
            progress.done.countDown();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                progress.done.countDown();
            }
        });
        Thread hook = new Thread(() -> streams.close(Duration.ofSeconds(30)));
        Runtime.getRuntime().addShutdownHook(hook);

        long t0 = System.nanoTime();
        streams.start();
        long timeout = Long.parseLong(a.getOrDefault("timeout-s", "3600"));
        boolean finished = progress.done.await(timeout, TimeUnit.SECONDS);
        long commits = (long) metricSum(streams, "commit-total", "stream-thread-metrics");
        long dropped = (long) metricSum(streams, "dropped-records-total", "stream-task-metrics");
        streams.close(Duration.ofMinutes(2));
        Runtime.getRuntime().removeShutdownHook(hook);
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (failure.get() != null) {
            System.err.println("count-by-author: the stream failed: " + failure.get());
            failure.get().printStackTrace();
            System.exit(1);
        }
        if (!finished || progress.counted.get() < want) {
            System.err.printf("count-by-author: %d of %d records reached the count (%s)%n", progress.counted.get(), want,
                    finished ? "the stream stopped" : "timed out after " + timeout + " s");
            System.exit(1);
        }
        System.out.printf("{\"records\":%d,\"output_records\":%d,\"commits_before_close\":%d,\"dropped_records\":%d,\"seconds\":%.3f}%n",
                progress.counted.get(), progress.emitted.get(), commits, dropped, seconds);
    }

    private static double metricSum(KafkaStreams streams, String name, String group) {
        double sum = 0;
        for (Map.Entry<MetricName, ? extends Metric> e : streams.metrics().entrySet()) {
            if (e.getKey().name().equals(name) && e.getKey().group().equals(group)
                    && e.getValue().metricValue() instanceof Number n) {
                sum += n.doubleValue();
            }
        }
        return sum;
    }

    private static void usage(String msg) {
        System.err.println("count-by-author: " + msg);
        System.err.print(USAGE);
        System.exit(2);
    }
}
