package chat

// BadRecord is an input record that could not be used, with why: what the
// analyzer hands to a dead-letter output (package sink writes it to Kafka).
type BadRecord struct {
	// Where the record was read.
	Topic     string
	Partition int32
	Offset    int64
	// The record as read; Value is nil for a tombstone.
	Key, Value []byte
	// Reason is the stable reason code (malformed_json, missing_field,
	// wrong_type, bad_timestamp, bad_value, null_value); Field the JSON
	// field at fault ("" for the record as a whole); Error the message.
	Reason, Field, Error string
}
