// Package cli implements the cordstream command line: subcommands, flags
// (each also readable from a CORDSTREAM_* environment variable), usage texts
// with working examples, and exit codes (0 ok, 1 runtime failure, 2 usage).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Version is set at build time with -ldflags "-X github.com/cordstream/cordstream/internal/cli.Version=…".
var Version = "dev"

// env carries what every subcommand needs from its surroundings.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"demo", "run the whole pipeline in one process: simulated Discord, embedded Kafka, bot, analyzer", runDemo},
		{"bot", "capture Discord messages into a Kafka topic", runBot},
		{"analyze", "count messages per author in sliding event-time windows (the seed's Spark query)", runAnalyze},
		{"dashboard", "serve the live dashboard of a whole query, all its analyzer instances, from its results topic", runDashboard},
		{"topics", "create, describe or delete Kafka topics", runTopics},
		{"sim", "run the Discord Gateway + REST simulator", runSim},
		{"version", "print the version", runVersion},
	}
}

// Run runs the command line args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, &env{stdout: stdout, stderr: stderr, getenv: osGetenv})
}

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		return report(e, c.name, err)
	}
	fmt.Fprintf(e.stderr, "cordstream: unknown command %q\n\n", args[0])
	printUsage(e.stderr)
	return exitUsage
}

// report prints err (if any) and maps it to an exit code.
func report(e *env, name string, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "cordstream %s: %s\n", name, ue.msg)
		if ue.hint != "" {
			fmt.Fprintf(e.stderr, "hint: %s\n", ue.hint)
		}
		fmt.Fprintf(e.stderr, "run 'cordstream %s --help' for usage\n", name)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "cordstream %s: %v\n", name, err)
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(e.stderr, "hint: %s\n", h.Hint())
	}
	return exitFailure
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `cordstream: Discord messages into Kafka, analysed in Spark-compatible event-time windows.

Usage: cordstream <command> [flags]

Commands:
`)
	cs := commands()
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Try it (no Discord token or Kafka needed):
  cordstream demo --duration 30s

Run 'cordstream <command> --help' for the flags and an example of each command.
`)
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("version", e, "Print the cordstream version.", "cordstream version")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "cordstream %s (%s %s/%s", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				fmt.Fprintf(e.stdout, ", commit %s", s.Value[:12])
			}
		}
	}
	fmt.Fprintln(e.stdout, ")")
	return nil
}

// usageError is a mistake in how a command was called: exit code 2.
type usageError struct {
	msg  string
	hint string
}

func (u *usageError) Error() string { return u.msg }

func usageErrorf(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// newLogger returns the logger every command uses: text on stderr.
func newLogger(e *env, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
