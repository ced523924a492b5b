package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

const topicsUsage = `Usage: cordstream topics <action> [flags]

Create, describe, delete or list Kafka topics.

Actions:
  create    create a topic; a topic that already exists is left as it is (not an error)
  describe  print a topic's partitions, leaders, replicas and configs
  delete    delete a topic
  list      print the names of the cluster's topics

Example (the original pipeline's kafka-topics --create step):
  cordstream topics create --topic discord_messages --partitions 1 --replication-factor 1

Run 'cordstream topics <action> --help' for the flags of each action.
`

// topicAction is one of the topics subcommands.
type topicAction struct {
	name    string
	about   string
	example string
	run     func(ctx context.Context, e *env, args []string) error
}

func topicActions() []topicAction {
	return []topicAction{
		{"create", "Create a topic. A topic that already exists is not an error: it is left unchanged and described briefly.",
			"cordstream topics create --topic discord_messages --partitions 1 --replication-factor 1\n" +
				"cordstream topics create --topic discord_messages --partitions 6 --replication-factor 3 --config retention.ms=604800000",
			runTopicsCreate},
		{"describe", "Print a topic's partitions with their leaders, replicas and in-sync replicas, and the configs set on it.",
			"cordstream topics describe --topic discord_messages\ncordstream topics describe --topic discord_messages --all-configs",
			runTopicsDescribe},
		{"delete", "Delete a topic and its records.",
			"cordstream topics delete --topic discord_messages",
			runTopicsDelete},
		{"list", "Print the names of the cluster's topics, one a line (internal topics left out).",
			"cordstream topics list --brokers localhost:9092",
			runTopicsList},
	}
}

func runTopics(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, topicsUsage)
		return usageErrorf("cordstream topics create --topic discord_messages --partitions 1 --replication-factor 1",
			"missing action: create, describe, delete or list")
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(e.stdout, topicsUsage)
		return errHelp
	}
	for _, a := range topicActions() {
		if a.name == args[0] {
			return a.run(ctx, e, args[1:])
		}
	}
	return usageErrorf("use create, describe, delete or list, e.g. cordstream topics create --topic discord_messages --partitions 1 --replication-factor 1",
		"unknown action %q", args[0])
}

func topicFlagSet(e *env, name string) *flagSet {
	for _, a := range topicActions() {
		if a.name == name {
			return newFlagSet("topics "+name, e, a.about, a.example)
		}
	}
	panic("unknown topics action " + name)
}

// topicFlags are the flags every action that names a topic shares.
type topicFlags struct {
	topic    string
	kafka    *kafkaFlags
	logLevel string
}

func addTopicFlags(fs *flagSet, e *env, withTopic bool) *topicFlags {
	f := &topicFlags{}
	if withTopic {
		fs.StringVar(&f.topic, "topic", "", "topic `name` (required), e.g. discord_messages")
	}
	f.kafka = addKafkaFlags(fs, e)
	fs.StringVar(&f.logLevel, "log-level", "warn", "log `level`: debug, info, warn, error")
	return f
}

// connect checks the flags and connects.
func (f *topicFlags) connect(ctx context.Context, e *env, action string, needTopic bool) (*kgo.Client, error) {
	if needTopic {
		if f.topic == "" {
			return nil, usageErrorf("e.g. --topic discord_messages", "--topic is required")
		}
		if err := kafka.ValidTopicName(f.topic); err != nil {
			return nil, asUsage(err)
		}
	}
	level, err := parseLogLevel(f.logLevel)
	if err != nil {
		return nil, usageErrorf("use debug, info, warn or error", "--log-level: %v", err)
	}
	cfg, err := f.kafka.config()
	if err != nil {
		return nil, err
	}
	log := newLogger(e, level).With("command", "topics "+action)
	return kafka.NewClient(ctx, cfg, log)
}

// asUsage turns a *kafka.ConfigError (a bad value the user typed) into a
// usage error; other errors pass unchanged.
func asUsage(err error) error {
	var ce *kafka.ConfigError
	if errors.As(err, &ce) {
		return usageErrorf(ce.Hint(), "%s", ce.Error())
	}
	return err
}

// configFlag collects repeated --config key=value pairs.
type configFlag map[string]string

func (c configFlag) String() string {
	var parts []string
	for k, v := range c {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (c configFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want key=value, e.g. retention.ms=604800000, got %q", s)
	}
	if _, dup := c[k]; dup {
		return fmt.Errorf("config %q given twice", k)
	}
	c[k] = v
	return nil
}

func runTopicsCreate(ctx context.Context, e *env, args []string) error {
	fs := topicFlagSet(e, "create")
	f := addTopicFlags(fs, e, true)
	var partitions, rf int
	fs.IntVar(&partitions, "partitions", 1, "number of partitions (-1: the broker's default)")
	fs.IntVar(&rf, "replication-factor", 1, "copies of each partition, at most the number of brokers (-1: the broker's default)")
	configs := configFlag{}
	fs.Var(configs, "config", "topic config `key=value`, repeatable, e.g. --config retention.ms=604800000")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if partitions == 0 || partitions < -1 || partitions > 1<<20 {
		return usageErrorf("use --partitions 1 or more", "invalid --partitions %d", partitions)
	}
	if rf == 0 || rf < -1 || rf > 1<<14 {
		return usageErrorf("use --replication-factor 1 or more (at most the number of brokers)", "invalid --replication-factor %d", rf)
	}
	spec := kafka.TopicSpec{Name: f.topic, Partitions: int32(partitions), ReplicationFactor: int16(rf), Configs: configs}
	if f.topic != "" {
		if err := spec.Validate(); err != nil {
			return asUsage(err)
		}
	}
	cl, err := f.connect(ctx, e, "create", true)
	if err != nil {
		return err
	}
	defer cl.Close()

	created, err := kafka.EnsureTopic(ctx, cl, spec)
	if err != nil {
		return err
	}
	info, derr := kafka.DescribeTopic(ctx, cl, spec.Name)
	switch {
	case created && derr != nil:
		fmt.Fprintf(e.stdout, "created topic %q\n", spec.Name)
		return nil
	case created:
		fmt.Fprintf(e.stdout, "created topic %q (%s, replication factor %d)\n",
			spec.Name, plural(len(info.Partitions), "partition"), info.ReplicationFactor)
		return nil
	case derr != nil:
		fmt.Fprintf(e.stdout, "topic %q already exists; left unchanged\n", spec.Name)
		return nil
	}
	fmt.Fprintf(e.stdout, "topic %q already exists (%s, replication factor %d); left unchanged\n",
		spec.Name, plural(len(info.Partitions), "partition"), info.ReplicationFactor)
	if partitions > 0 && len(info.Partitions) != partitions || rf > 0 && int(info.ReplicationFactor) != rf {
		fmt.Fprintf(e.stderr, "note: you asked for %s with replication factor %d; the existing topic keeps its layout\n",
			plural(partitions, "partition"), rf)
	}
	return nil
}

func runTopicsDescribe(ctx context.Context, e *env, args []string) error {
	fs := topicFlagSet(e, "describe")
	f := addTopicFlags(fs, e, true)
	var all bool
	fs.BoolVar(&all, "all-configs", false, "also print configs left at the broker's or Kafka's default")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	cl, err := f.connect(ctx, e, "describe", true)
	if err != nil {
		return err
	}
	defer cl.Close()
	info, err := kafka.DescribeTopic(ctx, cl, f.topic)
	if err != nil {
		return err
	}
	return printTopic(e.stdout, info, all)
}

// printTopic writes info the way kafka-topics --describe lays it out.
func printTopic(w io.Writer, info kafka.TopicInfo, all bool) error {
	fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\n",
		info.Name, info.ID, len(info.Partitions), info.ReplicationFactor)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range info.Partitions {
		leader := fmt.Sprint(p.Leader)
		if p.Leader < 0 {
			leader = "none"
		}
		fmt.Fprintf(tw, "  Partition: %d\tLeader: %s\tReplicas: %s\tIsr: %s\n", p.Partition, leader, ints(p.Replicas), ints(p.ISR))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var shown []kafka.TopicConfig
	for _, c := range info.Configs {
		if all || c.Source == "topic" {
			shown = append(shown, c)
		}
	}
	switch {
	case all:
		fmt.Fprintln(w, "Configs:")
	case len(shown) == 0:
		fmt.Fprintln(w, "Configs: none set on the topic (--all-configs prints the defaults)")
		return nil
	default:
		fmt.Fprintln(w, "Configs set on the topic (--all-configs prints the defaults too):")
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range shown {
		v := c.Value
		if c.Sensitive {
			v = "(sensitive)"
		}
		if all {
			fmt.Fprintf(tw, "  %s=%s\t(%s)\n", c.Key, v, c.Source)
		} else {
			fmt.Fprintf(tw, "  %s=%s\n", c.Key, v)
		}
	}
	return tw.Flush()
}

func runTopicsDelete(ctx context.Context, e *env, args []string) error {
	fs := topicFlagSet(e, "delete")
	f := addTopicFlags(fs, e, true)
	var ifExists bool
	fs.BoolVar(&ifExists, "if-exists", false, "a topic that does not exist is not an error")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	cl, err := f.connect(ctx, e, "delete", true)
	if err != nil {
		return err
	}
	defer cl.Close()
	err = kafka.DeleteTopic(ctx, cl, f.topic)
	var nf *kafka.TopicNotFoundError
	switch {
	case errors.As(err, &nf) && ifExists:
		fmt.Fprintf(e.stdout, "topic %q does not exist; nothing to delete\n", f.topic)
		return nil
	case errors.As(err, &nf):
		return &deleteMissingError{nf}
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stdout, "deleted topic %q\n", f.topic)
	return nil
}

// deleteMissingError is deleting a topic that does not exist: the hint is
// about --if-exists, not about creating it.
type deleteMissingError struct{ *kafka.TopicNotFoundError }

func (d *deleteMissingError) Hint() string {
	return "check --topic and --brokers ('cordstream topics list' prints the topics); --if-exists makes this not an error"
}

func runTopicsList(ctx context.Context, e *env, args []string) error {
	fs := topicFlagSet(e, "list")
	f := addTopicFlags(fs, e, false)
	if err := parse(fs, e, args); err != nil {
		return err
	}
	cl, err := f.connect(ctx, e, "list", false)
	if err != nil {
		return err
	}
	defer cl.Close()
	names, err := kafka.ListTopics(ctx, cl)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

func ints(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if n < 0 {
		return "the broker's default number of " + word + "s"
	}
	return fmt.Sprintf("%d %ss", n, word)
}
