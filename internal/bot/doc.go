// Package bot is the pipeline between the Discord Gateway and Kafka: it
// filters message events (bots, webhooks, guild and channel lists), applies
// the content privacy mode, writes each record to a durable local spool,
// publishes it with the author id as key, fetches through REST what the
// Gateway did not deliver while the bot or its session was down, counts
// everything, and shuts down by flushing under a deadline.
//
// # Delivery contract
//
// Published means acknowledged by Kafka: idempotent producer, acks=all, the
// produce promise reported success.
//
// With a spool (Spooled, the command's default):
//
//   - At-least-once for every event the bot accepted from the Gateway. An
//     event is accepted when the handler returns; only then does the shard's
//     sequence number advance (the position Discord resumes from). Before
//     returning, the handler has written the record to the spool
//     (spool.Append: write(2)). When it is fsynced is the command's
//     --spool-sync (spool.Options): group, the default, is a continuous
//     group commit (at most one fsync every 10 ms) and lets the handler
//     return once its record is written, waiting only while more than 1000
//     records await fsync;
//     always waits for the fsync that covers the record; a period P
//     fsyncs every P. A record leaves the spool only after Kafka
//     acknowledged it, or refused it for good (too large: counted as
//     failed, logged). Any other refusal keeps the record and sends it
//     again.
//   - What survives: a crash of the process (kill -9, panic, OOM) loses
//     nothing accepted, whatever --spool-sync says. A power loss or kernel
//     crash loses nothing with always; with group (the default) it can
//     lose the records written since the last completed fsync (at most
//     1000, typically the last ~10 ms); with a period
//     P, the records accepted in the last P. Creates among them are then
//     fetched by the backfill (see below). Kafka being down for any length
//     of time loses nothing.
//   - Bound: the spool holds at most its MaxBytes on disk. When full, or
//     when its file system is (a full disk is an outage, not a loss),
//     Publish blocks, the Gateway handler blocks with it and the shard stops
//     reading (counted in cordstream_bot_backpressure_total and
//     cordstream_bot_backpressure_seconds_total, shown by
//     cordstream_bot_spool_blocked and the spool check of /healthz, logged
//     with the cause and the directory). Acknowledgements free the space,
//     the segment being written included, and reading resumes by itself.
//     Discord keeps the events and replays them on resume; if its session
//     expires first, Discord does not replay them (counted in
//     cordstream_discord_sessions_lost_total) and the backfill fetches the
//     creates after the new session.
//   - Order: records reach Kafka in spool order, which per shard is Gateway
//     order; one author's records go to one partition and the idempotent
//     producer keeps their order across retries. After a restart the
//     previous run's records are published before any new one.
//
// Without a spool (the Publisher alone): at most MaxBuffered records wait in
// memory; when that many wait, reading from Discord pauses as above. A
// crash loses the records in memory (the backfill recovers the creates
// among them at the next start only if positions are saved, which needs a
// spool directory), and records still unacknowledged when the shutdown
// deadline passes are counted as failed (reason shutdown_timeout) and
// logged by message id.
//
// # Backfill (messages the Gateway never delivered)
//
// Cursors keeps per channel the last message id up to which everything was
// handled; the command saves it in the spool directory every second (only
// the channels that moved, in a journal) and at shutdown. Since Discord may
// deliver a message after one created later, the position a backfill
// starts from is capped to LateArrival (5 s) before the stream was lost. On every new Gateway session (the bot started, or Discord ended
// a session without replaying it: INVALID_SESSION false, an expired
// session, close 4007/4009) the Backfiller fetches each channel's messages
// after its position through GET /channels/{id}/messages, within Discord's
// rate limits, and publishes them as ordinary create records. It recovers a
// create when: the channel is known (from GUILD_CREATE, or a saved
// position), the bot has View Channel and Read Message History there (else
// a warning names the permission), the message is younger than MaxAge and
// still exists, and the channel is within MaxChannels. It does not recover
// edits or deletions made during a gap (the REST API has no history of
// them), nor anything from before the bot's first start. Backfilled
// records are published after the live records that arrived while fetching:
// per author they are in order among themselves, not with the live stream
// (message_timestamp is right; event-time consumers place them by it).
//
// # Duplicates
//
// A message can reach Kafka more than once, always with the same
// message_id (and the same record, unless the content mode changed between
// runs); consumers de-duplicate by message_id. Where they arise:
//
//   - a crash after Kafka acknowledged records but before the spool's
//     acknowledgement checkpoint (rewritten every second) recorded it: the
//     next start sends them again;
//   - a produce request the broker completes after the bot died (the
//     broker was slow or paused): the next start sends it again;
//   - the backfill fetching messages already published, when the saved
//     positions lag behind (a crash loses up to a second of them), and,
//     after any stop, crash or lost session, the messages of the last
//     LateArrival (5 s) before it in each channel active then, fetched
//     again in case one of them was still on its way;
//   - Discord sending an event again in a later session.
//
// Within one run the pipeline drops a create whose id it already took
// (the last RecentIDs ids: live, backfilled or replayed from the spool,
// counted as filtered with reason "duplicate"), and Kafka's idempotent
// producer drops the copies its own retries would make.
//
// # Accounting
//
// Every event received from the Gateway or fetched by the backfill, and
// every record replayed from the spool, ends in exactly one of: published,
// filtered (with a reason), failed (with a reason), or left in the spool at
// shutdown for the next start; the counts are logged when the bot stops.
package bot
