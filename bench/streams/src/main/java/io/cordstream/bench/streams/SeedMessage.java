package io.cordstream.bench.streams;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * The two fields of a discord_messages record the seed's query reads:
 * author_name (null when absent or JSON null) and message_timestamp as epoch
 * milliseconds (-1 when absent or unparseable, which makes Kafka Streams skip
 * the record, as Spark skips a row whose timestamp casts to null).
 */
public record SeedMessage(String authorName, long timestampMs) {

    private static final JsonFactory JSON = new JsonFactory();

    /**
     * Reads author_name and message_timestamp from a JSON object with a
     * streaming parser, skipping every other field. Malformed JSON or a null
     * value gives a record with timestamp -1 (Spark's PERMISSIVE from_json
     * gives a row of nulls).
     */
    public static SeedMessage parse(byte[] value) {
        if (value == null) {
            return new SeedMessage(null, -1);
        }
        String author = null;
        long ts = -1;
        try (JsonParser p = JSON.createParser(value)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return new SeedMessage(null, -1);
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                if ("author_name".equals(name)) {
                    author = t == JsonToken.VALUE_STRING ? p.getText() : null;
                } else if ("message_timestamp".equals(name)) {
                    ts = t == JsonToken.VALUE_STRING ? SeedTimestamp.parseMillis(p.getText()) : -1;
                } else {
                    p.skipChildren();
                }
            }
        } catch (IOException e) {
            return new SeedMessage(null, -1);
        }
        return new SeedMessage(author, ts);
    }

    /** Deserializes a record value with {@link #parse}. */
    public static final class JsonDeserializer implements Deserializer<SeedMessage> {
        @Override
        public SeedMessage deserialize(String topic, byte[] data) {
            return parse(data);
        }
    }

    /**
     * The compact form a parsed message travels in through the repartition
     * topic: 8 bytes of timestamp, then the author's name in UTF-8 (a leading
     * byte says whether it is null).
     */
    public static final class CompactSerializer implements Serializer<SeedMessage> {
        @Override
        public byte[] serialize(String topic, SeedMessage m) {
            if (m == null) {
                return null;
            }
            byte[] name = m.authorName == null ? new byte[0] : m.authorName.getBytes(StandardCharsets.UTF_8);
            return ByteBuffer.allocate(9 + name.length)
                    .putLong(m.timestampMs)
                    .put((byte) (m.authorName == null ? 0 : 1))
                    .put(name)
                    .array();
        }
    }

    /** Reads what {@link CompactSerializer} wrote. */
    public static final class CompactDeserializer implements Deserializer<SeedMessage> {
        @Override
        public SeedMessage deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            if (data.length < 9) {
                throw new IllegalArgumentException("compact seed message of " + data.length + " bytes, want at least 9");
            }
            ByteBuffer b = ByteBuffer.wrap(data);
            long ts = b.getLong();
            boolean hasName = b.get() != 0;
            String name = hasName ? new String(data, 9, data.length - 9, StandardCharsets.UTF_8) : null;
            return new SeedMessage(name, ts);
        }
    }

    /** The serde of the input topic's values (JSON in; never written). */
    public static Serde<SeedMessage> jsonSerde() {
        return Serdes.serdeFrom(new CompactSerializer(), new JsonDeserializer());
    }

    /** The serde of the repartition topic's values. */
    public static Serde<SeedMessage> compactSerde() {
        return Serdes.serdeFrom(new CompactSerializer(), new CompactDeserializer());
    }
}
