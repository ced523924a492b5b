// Package bot is the pipeline between the Discord Gateway and Kafka: it
// filters message events (bots, webhooks, guild and channel lists), applies
// the content privacy mode, publishes one record per event with the author id
// as key, counts everything, and shuts down by flushing under a deadline.
//
// Delivery contract:
//   - A message counts as published only when Kafka acknowledged it
//     (idempotent producer, acks=all; the produce promise reported success).
//   - While Kafka is unreachable the producer retries without limit and the
//     pipeline logs "Kafka unreachable" every few seconds.
//   - At most MaxBuffered records wait for Kafka. When that many are waiting,
//     Publish blocks, the Gateway handler blocks with it, and the shard stops
//     reading from Discord: nothing is dropped. Discord keeps the events; if
//     it closes the connection meanwhile, the session is resumed and Discord
//     replays them; if the session has expired by then, Discord does not
//     replay them and the loss is counted
//     (cordstream_discord_sessions_lost_total) and logged. Each pause is
//     counted in cordstream_bot_backpressure_total and its duration in
//     cordstream_bot_backpressure_seconds_total.
//   - Every received event ends in exactly one of: published, filtered,
//     failed (with a reason); the counts are logged at shutdown.
package bot
