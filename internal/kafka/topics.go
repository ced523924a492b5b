package kafka

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int32             // >= 1, or -1 for the broker's default
	ReplicationFactor int16             // >= 1, or -1 for the broker's default
	Configs           map[string]string // topic configs such as retention.ms
}

// Validate checks the spec the way Kafka does before asking it: a legal topic
// name (1-249 of [a-zA-Z0-9._-], not "." or "..") and positive counts (or -1).
func (s TopicSpec) Validate() error {
	if err := ValidTopicName(s.Name); err != nil {
		return err
	}
	if s.Partitions == 0 || s.Partitions < -1 {
		return configErr("use --partitions 1 or more", nil, "topic %q: invalid partition count %d", s.Name, s.Partitions)
	}
	if s.ReplicationFactor == 0 || s.ReplicationFactor < -1 {
		return configErr("use --replication-factor 1 or more (at most the number of brokers)",
			nil, "topic %q: invalid replication factor %d", s.Name, s.ReplicationFactor)
	}
	for k := range s.Configs {
		if strings.TrimSpace(k) == "" {
			return configErr("topic configs are key=value, e.g. --config retention.ms=86400000", nil, "topic %q: empty config key", s.Name)
		}
	}
	return nil
}

// ValidTopicName reports whether name is a legal Kafka topic name.
func ValidTopicName(name string) error {
	const hint = "topic names are 1-249 characters of letters, digits, '.', '_' and '-', e.g. discord_messages"
	switch {
	case name == "":
		return configErr(hint, nil, "empty topic name")
	case name == "." || name == "..":
		return configErr(hint, nil, "topic name %q is not allowed", name)
	case len(name) > 249:
		return configErr(hint, nil, "topic name is %d characters long, more than 249", len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return configErr(hint, nil, "topic name %q contains %q", name, r)
		}
	}
	return nil
}

// TopicNotFoundError says a topic does not exist. It matches
// kerr.UnknownTopicOrPartition with errors.Is.
type TopicNotFoundError struct {
	Topic string
}

func (e *TopicNotFoundError) Error() string { return fmt.Sprintf("topic %q does not exist", e.Topic) }

// Unwrap returns kerr.UnknownTopicOrPartition.
func (e *TopicNotFoundError) Unwrap() error { return kerr.UnknownTopicOrPartition }

// Hint says how to create the topic.
func (e *TopicNotFoundError) Hint() string {
	return fmt.Sprintf("create it: cordstream topics create --topic %s --partitions 1 --replication-factor 1 "+
		"(or check --topic and --brokers)", e.Topic)
}

// TopicError is a broker refusing a topic operation; Hint says what to change.
type TopicError struct {
	Op    string // "create", "delete", "describe"
	Topic string
	Err   error
	hint  string
}

func (e *TopicError) Error() string { return fmt.Sprintf("%s topic %q: %v", e.Op, e.Topic, e.Err) }

// Unwrap returns the broker's error (a kerr.Error, often with its message).
func (e *TopicError) Unwrap() error { return e.Err }

// Hint says what to change.
func (e *TopicError) Hint() string { return e.hint }

func topicErr(op, topic string, err error, msg string) error {
	if msg != "" && !strings.Contains(err.Error(), msg) {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	te := &TopicError{Op: op, Topic: topic, Err: err}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return &TopicNotFoundError{Topic: topic}
	case errors.Is(err, kerr.InvalidReplicationFactor):
		te.hint = "the replication factor cannot exceed the number of brokers; on a single broker use --replication-factor 1"
	case errors.Is(err, kerr.InvalidPartitions):
		te.hint = "use --partitions 1 or more"
	case errors.Is(err, kerr.InvalidConfig):
		te.hint = "check the --config keys and values against Kafka's topic configs (e.g. retention.ms=86400000, cleanup.policy=compact)"
	case errors.Is(err, kerr.InvalidTopicException):
		te.hint = "topic names are 1-249 characters of letters, digits, '.', '_' and '-'"
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		te.hint = "the SASL user lacks the ACL for this; ask the cluster's operator"
	case errors.Is(err, kerr.TopicDeletionDisabled):
		te.hint = "the broker has delete.topic.enable=false"
	}
	return te
}

// EnsureTopic creates the topic unless it exists. created reports whether
// this call created it; an existing topic is not an error (its partitions and
// configs are left as they are). A created topic is returned only once every
// partition has a leader, so producing to it right away works.
func EnsureTopic(ctx context.Context, cl *kgo.Client, spec TopicSpec) (created bool, err error) {
	if err := spec.Validate(); err != nil {
		return false, err
	}
	var configs map[string]*string
	if len(spec.Configs) > 0 {
		configs = make(map[string]*string, len(spec.Configs))
		for k, v := range spec.Configs {
			configs[k] = kadm.StringPtr(v)
		}
	}
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, configs, spec.Name)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		// Created a moment ago (by another instance, or by whoever made it
		// just before we started): the controller has it before every
		// broker's metadata does. Wait, so that what follows finds it.
		return false, waitForLeaders(ctx, cl, spec.Name)
	case err != nil && resp.Topic == "":
		return false, fmt.Errorf("create topic %q: %w", spec.Name, err)
	case err != nil:
		return false, topicErr("create", spec.Name, err, resp.ErrMessage)
	}
	if err := waitForLeaders(ctx, cl, spec.Name); err != nil {
		return true, err
	}
	return true, nil
}

// waitForLeaders waits until every partition of topic has a leader.
func waitForLeaders(ctx context.Context, cl *kgo.Client, topic string) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		t, err := topicMetadata(wctx, cl, topic)
		if err == nil && len(t.Partitions) > 0 && allLed(t.Partitions) {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("wait for topic %q: %w", topic, ctx.Err())
			}
			return fmt.Errorf("topic %q was created but its partitions have no leader after 30s", topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(ps []kmsg.MetadataResponseTopicPartition) bool {
	for _, p := range ps {
		if p.Leader < 0 || p.ErrorCode != 0 {
			return false
		}
	}
	return true
}

// topicMetadata asks a broker (not franz-go's metadata cache, which may be a
// few seconds old) about one topic. A missing topic is a *TopicNotFoundError.
func topicMetadata(ctx context.Context, cl *kgo.Client, topic string) (kmsg.MetadataResponseTopic, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.MetadataResponseTopic{}, fmt.Errorf("metadata for topic %q: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return t, topicErr("describe", topic, err, "")
		}
		return t, nil
	}
	return kmsg.MetadataResponseTopic{}, &TopicNotFoundError{Topic: topic}
}

// TopicInfo describes an existing topic.
type TopicInfo struct {
	Name              string
	ID                string
	ReplicationFactor int16 // replicas of partition 0
	Partitions        []PartitionInfo
	Configs           []TopicConfig // sorted by key
}

// PartitionInfo is one partition's placement.
type PartitionInfo struct {
	Partition int32
	Leader    int32 // -1 when it has none
	Replicas  []int32
	ISR       []int32
}

// TopicConfig is one config of a topic.
type TopicConfig struct {
	Key       string
	Value     string // empty for sensitive configs
	Sensitive bool
	// Source says where the value comes from: "topic" when set on the topic,
	// "broker" when a broker setting applies, "default" for Kafka's default.
	Source string
}

// DescribeTopic returns the topic's partitions, leaders, replicas and
// configs; a missing topic is a *TopicNotFoundError.
func DescribeTopic(ctx context.Context, cl *kgo.Client, topic string) (TopicInfo, error) {
	if err := ValidTopicName(topic); err != nil {
		return TopicInfo{}, err
	}
	t, err := topicMetadata(ctx, cl, topic)
	if err != nil {
		return TopicInfo{}, err
	}
	info := TopicInfo{Name: topic, ID: base64.RawURLEncoding.EncodeToString(t.TopicID[:])}
	sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i].Partition < t.Partitions[j].Partition })
	for _, p := range t.Partitions {
		info.Partitions = append(info.Partitions, PartitionInfo{
			Partition: p.Partition, Leader: p.Leader,
			Replicas: append([]int32(nil), p.Replicas...), ISR: append([]int32(nil), p.ISR...),
		})
	}
	if len(info.Partitions) > 0 {
		info.ReplicationFactor = int16(len(info.Partitions[0].Replicas))
	}
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("describe configs of topic %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return TopicInfo{}, topicErr("describe", topic, err, "")
	}
	if rc.Err != nil {
		return TopicInfo{}, topicErr("describe", topic, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		info.Configs = append(info.Configs, TopicConfig{
			Key: c.Key, Value: c.MaybeValue(), Sensitive: c.Sensitive, Source: configSource(c.Source),
		})
	}
	sort.Slice(info.Configs, func(i, j int) bool { return info.Configs[i].Key < info.Configs[j].Key })
	return info, nil
}

func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	case kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigSourceDynamicBrokerLoggerConfig:
		return "broker"
	}
	return strings.ToLower(s.String())
}

// DeleteTopic deletes the topic; a missing topic is a *TopicNotFoundError.
func DeleteTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	if err := ValidTopicName(topic); err != nil {
		return err
	}
	resp, err := kadm.NewClient(cl).DeleteTopic(ctx, topic)
	switch {
	case err == nil:
		return nil
	case resp.Topic == "" && !errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("delete topic %q: %w", topic, err)
	}
	return topicErr("delete", topic, err, resp.ErrMessage)
}

// ListTopics returns the names of the cluster's topics, sorted, without
// internal topics.
func ListTopics(ctx context.Context, cl *kgo.Client) ([]string, error) {
	tds, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return tds.Names(), nil
}
