package io.cordstream.bench.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.junit.jupiter.api.Test;

class CountByAuthorTest {

    private static byte[] msg(String author, String ts) {
        String a = author == null ? "null" : "\"" + author + "\"";
        return ("{\"author_id\":\"1\",\"author_name\":" + a + ",\"content\":\"x \\\"q\\\" {}\",\"extra\":{\"n\":[1,2]},"
                + "\"message_timestamp\":\"" + ts + "\"}").getBytes(StandardCharsets.UTF_8);
    }

    /** Runs the topology on values and returns the last row written per key. */
    private static Map<String, String> run(CountByAuthor.Progress progress, byte[]... values) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "test");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        // No cache: every update is written, so the last one per key is the count.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        Map<String, String> last = new LinkedHashMap<>();
        try (TopologyTestDriver d = new TopologyTestDriver(CountByAuthor.topology("in", "out", progress), p)) {
            TestInputTopic<byte[], byte[]> in = d.createInputTopic("in", new ByteArraySerializer(), new ByteArraySerializer());
            TestOutputTopic<String, String> out = d.createOutputTopic("out", new StringDeserializer(), new StringDeserializer());
            for (byte[] v : values) {
                in.pipeInput(null, v);
            }
            for (KeyValue<String, String> kv : out.readKeyValuesToList()) {
                last.put(kv.key, kv.value);
            }
        }
        return last;
    }

    @Test
    void countsInHoppingWindows() {
        CountByAuthor.Progress progress = new CountByAuthor.Progress(3);
        Map<String, String> rows = run(progress,
                msg("alice", "2025-11-07 18:00:10.000"),
                msg("alice", "2025-11-07 18:00:40.500"),
                msg("bob", "2025-11-07 18:00:29.999"));
        assertEquals(3, progress.counted.get());
        assertEquals(0, progress.done.getCount());
        // alice at :10 is in [17:59:30, 18:00:30) and [18:00:00, 18:01:00); at :40.5 in [18:00:00, 18:01:00) and [18:00:30, 18:01:30).
        assertEquals("{\"window_start\":\"2025-11-07T17:59:30Z\",\"window_end\":\"2025-11-07T18:00:30Z\",\"author_name\":\"alice\",\"message_count\":1}",
                rows.get("{\"window_start\":\"2025-11-07T17:59:30Z\",\"window_end\":\"2025-11-07T18:00:30Z\",\"author_name\":\"alice\"}"));
        assertEquals("{\"window_start\":\"2025-11-07T18:00:00Z\",\"window_end\":\"2025-11-07T18:01:00Z\",\"author_name\":\"alice\",\"message_count\":2}",
                rows.get("{\"window_start\":\"2025-11-07T18:00:00Z\",\"window_end\":\"2025-11-07T18:01:00Z\",\"author_name\":\"alice\"}"));
        assertEquals("{\"window_start\":\"2025-11-07T18:00:30Z\",\"window_end\":\"2025-11-07T18:01:30Z\",\"author_name\":\"alice\",\"message_count\":1}",
                rows.get("{\"window_start\":\"2025-11-07T18:00:30Z\",\"window_end\":\"2025-11-07T18:01:30Z\",\"author_name\":\"alice\"}"));
        assertEquals(5, rows.size(), rows.toString());
    }

    @Test
    void dropsWhatIsLaterThanTheGrace() {
        CountByAuthor.Progress progress = new CountByAuthor.Progress(10);
        Map<String, String> rows = run(progress,
                msg("alice", "2025-11-07 18:03:00.000"),
                // Stream time 18:03:00: windows ending at or before 18:02:00 are closed.
                // 18:01:10 is in [18:00:30, 18:01:30) (closed) and [18:01:00, 18:02:00) (closed).
                msg("carol", "2025-11-07 18:01:10.000"),
                // 18:01:40 is in [18:01:00, 18:02:00) (closed) and [18:01:30, 18:02:30) (open).
                msg("dave", "2025-11-07 18:01:40.000"));
        assertEquals(3, progress.counted.get());
        assertEquals(1, progress.done.getCount());
        assertEquals(3, rows.size(), rows.toString());
        assertNull(rows.get("{\"window_start\":\"2025-11-07T18:00:30Z\",\"window_end\":\"2025-11-07T18:01:30Z\",\"author_name\":\"carol\"}"));
        assertEquals("{\"window_start\":\"2025-11-07T18:01:30Z\",\"window_end\":\"2025-11-07T18:02:30Z\",\"author_name\":\"dave\",\"message_count\":1}",
                rows.get("{\"window_start\":\"2025-11-07T18:01:30Z\",\"window_end\":\"2025-11-07T18:02:30Z\",\"author_name\":\"dave\"}"));
    }

    @Test
    void badRecordsAreSkipped() {
        CountByAuthor.Progress progress = new CountByAuthor.Progress(10);
        Map<String, String> rows = run(progress,
                "not json".getBytes(StandardCharsets.UTF_8),
                msg("erin", "yesterday"),
                msg("frank", "2025-11-07 18:00:10.000"));
        assertEquals(1, progress.counted.get());
        assertEquals(2, rows.size(), rows.toString());
    }

    @Test
    void parsesTheSeedTimestamp() {
        assertEquals(1762538400000L, SeedTimestamp.parseMillis("2025-11-07 18:00:00.000"));
        assertEquals(1762538400123L, SeedTimestamp.parseMillis("2025-11-07 18:00:00.123"));
        assertEquals(1762538400123L, SeedTimestamp.parseMillis("2025-11-07T18:00:00.123Z"));
        assertEquals(1762538400000L, SeedTimestamp.parseMillis("2025-11-07T19:00:00+01:00"));
        assertEquals(1762538400000L, SeedTimestamp.parseMillis("2025-11-07 18:00:00"));
        assertEquals(-1, SeedTimestamp.parseMillis("2025-02-30 18:00:00.000"));
        assertEquals(-1, SeedTimestamp.parseMillis("2025-11-07 25:00:00.000"));
        assertEquals(-1, SeedTimestamp.parseMillis("yesterday"));
    }

    @Test
    void readsOnlyTheFieldsItNeeds() {
        assertEquals(new SeedMessage("a\"b", 1762538400000L), SeedMessage.parse(msg("a\\\"b", "2025-11-07 18:00:00.000")));
        assertEquals(new SeedMessage(null, 1762538400000L), SeedMessage.parse(msg(null, "2025-11-07 18:00:00.000")));
        assertEquals(new SeedMessage(null, -1), SeedMessage.parse(null));
        assertEquals(new SeedMessage(null, -1), SeedMessage.parse("[1]".getBytes(StandardCharsets.UTF_8)));
        SeedMessage m = new SeedMessage("ünï", 42);
        assertEquals(m, new SeedMessage.CompactDeserializer().deserialize("t", new SeedMessage.CompactSerializer().serialize("t", m)));
        SeedMessage n = new SeedMessage(null, 7);
        assertEquals(n, new SeedMessage.CompactDeserializer().deserialize("t", new SeedMessage.CompactSerializer().serialize("t", n)));
    }
}
