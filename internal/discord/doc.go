// Package discord is cordstream's adapter for the Discord Gateway (v10) and
// REST API: it connects a bot to the Gateway, keeps every shard's session
// alive and resumable, and turns message events into chat records for a
// handler.
//
// What it guarantees, and owns itself rather than leaving to a library:
//
//   - Events reach the handler in the order Discord sent them, one at a time
//     per shard. A handler that blocks stops reading from that shard
//     (back-pressure); the sequence number used to resume only advances after
//     the handler returned, so an event that was read but not handled is
//     replayed by Discord on resume.
//   - Heartbeats follow HELLO's interval with the documented jitter; a
//     heartbeat that is not acknowledged before the next one is due marks the
//     connection as a zombie: it is closed with a non-1000 code and the session
//     is resumed on resume_gateway_url, so Discord replays what was missed.
//     The check is suspended while the handler itself holds the reader, since
//     an unread ACK is then no evidence of a dead connection.
//   - RECONNECT (op 7), INVALID_SESSION (op 9, resumable or not), dropped TCP
//     connections and resumable close codes reconnect with backoff; fatal close
//     codes (4004, 4010-4014) and a REST 401 end Run with a typed error that
//     says what to do, and never reconnect.
//   - IDENTIFYs respect max_concurrency (one per bucket per 5 s) and the daily
//     session-start budget from /gateway/bot.
//   - The token is sent only in IDENTIFY, RESUME and the REST Authorization
//     header; it is never logged, put in an error, or exposed in a metric.
//   - Every new session (READY, not RESUMED) is reported to Config.OnReady,
//     and every GUILD_CREATE to Config.OnGuild with the channels that hold
//     messages and whether the bot may read their history (computed from
//     the guild's roles and the channels' permission overwrites), before any
//     later event of that shard reaches the Handler: a caller can mark the
//     gap before live events arrive.
//   - REST calls keep within Discord's rate limits without waiting to be
//     told (rate-limits.mdx): per bucket from X-RateLimit-Remaining and
//     X-RateLimit-Reset-After, the global 50 requests per second across
//     routes, and after a 429 the wait in retry_after (for every route when
//     Discord says the limit is global). ChannelMessages pages a channel's
//     history after a message id and returns it oldest first, although
//     Discord sends every page newest first.
//
// The wire protocol follows Discord's documentation (discord-api-docs:
// gateway.mdx, gateway-events.mdx, opcodes-and-status-codes.mdx) and is
// spoken over gorilla/websocket with plain JSON frames (no transport
// compression).
package discord
