// Command sediment runs a Sediment broker (`sediment serve`) and its tools.
//
// Subcommands live in a registry filled from init() so that each one can be its own file
// (serve.go here; bench.go is the load generator's). Flags, environment and the config file are
// handled here only; the broker package sees a plain broker.Config.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// subcommand is one `sediment <name>` command.
type subcommand struct {
	summary string
	// run gets the arguments after the subcommand name. It returns a *usageError for bad
	// flags or values, which exits with status 2; any other error exits with status 1.
	run func(args []string, stdout, stderr io.Writer) error
}

// subcommands is filled from init() in each subcommand's file.
var subcommands = map[string]subcommand{}

// registerSubcommand adds a subcommand; called from init().
func registerSubcommand(name, summary string, run func(args []string, stdout, stderr io.Writer) error) {
	if _, dup := subcommands[name]; dup {
		panic("sediment: subcommand " + name + " registered twice")
	}
	subcommands[name] = subcommand{summary: summary, run: run}
}

// usageError is an error caused by the command line, environment or config file (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sediment: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := sc.run(args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(stderr, "sediment %s: %v\n", args[0], err)
		fmt.Fprintf(stderr, "Run 'sediment %s --help' for usage.\n", args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "sediment %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Sediment: a Kafka-compatible log service with tiered storage.")
	fmt.Fprintln(w, "\nUsage: sediment <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'sediment <command> --help' for a command's flags.")
}
