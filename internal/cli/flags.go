package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

var errHelp = errors.New("help shown")

func osGetenv(k string) string { return os.Getenv(k) }

// flagSet wraps flag.FlagSet with a usage text that shows a working example,
// and with environment variables as a fallback for every flag:
// --starting-offsets is read from CORDSTREAM_STARTING_OFFSETS when not given.
type flagSet struct {
	*flag.FlagSet
	about   string
	example string
}

func newFlagSet(name string, e *env, about, example string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), about: about, example: example}
	fs.SetOutput(e.stdout)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: cordstream %s [flags]\n\n%s\n\nExample:\n", name, about)
		for _, l := range strings.Split(strings.TrimRight(example, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
		fmt.Fprintf(w, "\nFlags (each also read from the environment variable shown):\n")
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s %s\n      %s [$%s]", f.Name, typ, usage, envName(f.Name))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
	return fs
}

// envName is the environment variable that backs a flag.
func envName(flagName string) string {
	return "CORDSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse parses args, then fills every flag not given on the command line from
// its environment variable. It returns errHelp after printing the usage for
// -h/--help, and a usageError for anything malformed.
func parse(fs *flagSet, e *env, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usageErrorf("", "unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v := e.getenv(envName(f.Name)); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usageErrorf("", "invalid value %q in $%s: %v", v, envName(f.Name), serr)
			}
		}
	})
	return err
}

// stringList is a repeatable flag that also accepts comma-separated values.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, splitList(v)...)
	return nil
}
