package io.cordstream.bench.streams;

import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;

/**
 * Parses the seed's message_timestamp: "yyyy-MM-dd HH:mm:ss.SSS" in UTC (the
 * form every producer of the topic writes), and, more slowly, ISO 8601 with
 * a 'T' or a space, with or without a fraction and an offset (a time without
 * an offset is UTC, as the seed's query reads it with a UTC session zone).
 */
public final class SeedTimestamp {

    private SeedTimestamp() {}

    /** Returns epoch milliseconds, or -1 when s is not a timestamp. */
    public static long parseMillis(String s) {
        if (s.length() == 23 && s.charAt(4) == '-' && s.charAt(7) == '-' && s.charAt(10) == ' '
                && s.charAt(13) == ':' && s.charAt(16) == ':' && s.charAt(19) == '.') {
            int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
            int h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2), ms = digits(s, 20, 3);
            if (y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && h >= 0 && h < 24 && mi >= 0 && mi < 60
                    && sec >= 0 && sec < 60 && ms >= 0 && d <= LocalDate.of(y, mo, 1).lengthOfMonth()) {
                long days = LocalDate.of(y, mo, d).toEpochDay();
                return ((days * 24 + h) * 60 + mi) * 60_000L + sec * 1000L + ms;
            }
            return -1;
        }
        String iso = s.trim().replace(' ', 'T');
        try {
            return OffsetDateTime.parse(iso).toInstant().toEpochMilli();
        } catch (DateTimeParseException e) {
            // no offset: UTC
        }
        try {
            return LocalDateTime.parse(iso).toInstant(ZoneOffset.UTC).toEpochMilli();
        } catch (DateTimeParseException e) {
            return -1;
        }
    }

    /** The n decimal digits of s at off as a number, -1 if one is not a digit. */
    private static int digits(String s, int off, int n) {
        int v = 0;
        for (int i = off; i < off + n; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        return v;
    }
}
