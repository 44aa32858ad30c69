package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Exit codes. exitPending follows terraform plan -detailed-exitcode.
const (
	exitOK      = 0
	exitError   = 1
	exitPending = 2
	exitUsage   = 64
)

// env is what every command gets: where to write, and how to log.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
	hidden  bool
}

func commands() map[string]command {
	return map[string]command{
		"init":        {summary: "read a compose service, write ferry.hcl", run: cmdInit},
		"fingerprint": {summary: "print the content fingerprint of a SQLite database", run: cmdFingerprint},
		"render":      {summary: "write the Terraform module, jobspec and runbook", run: cmdRender},
		"rehearse":    {summary: "the whole migration on this machine, against a copy of the data", run: cmdRehearse},
		"version":     {summary: "print ferry's version", run: cmdVersion},
		"plan":        {summary: "preflight and the steps left, changing nothing (exit 0 none, 2 pending)", run: cmdPlan},
		"migrate":     {summary: "run the migration; resumes after a crash, rolls back on failure", run: cmdMigrate},
		"verify":      {summary: "prove the deployed service is healthy and holds the same data", run: cmdVerify},
		"rollback":    {summary: "stop the Nomad job and start the compose container again", run: cmdRollback},
		"finish":      {summary: "after the hold period, remove the compose service", run: cmdFinish},
		"status":      {summary: "where the migration stands", run: cmdStatus},
		"drill":       {summary: "drill restore | failover: prove the backup restores and the service survives its node", run: cmdDrill},
		"restore":     {summary: "restore a replica (latest, or at a time or txid) to a local file", run: cmdRestore},
	}
}

// run is main without the process: it parses args, runs one command and
// maps its error to an exit code, printing hints only here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ferry: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return exitUsage
	}
	// Steps and results are printed by the commands; the log is for
	// warnings unless FERRY_LOG asks for more (info, debug).
	level := slog.LevelWarn
	if err := level.UnmarshalText([]byte(os.Getenv("FERRY_LOG"))); err != nil {
		level = slog.LevelWarn
	}
	e := &env{
		stdout: stdout,
		stderr: stderr,
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	err := c.run(ctx, e, args[1:])
	return report(stderr, args[0], err)
}

// errPending is returned by commands that completed but found work left
// to do (plan).
var errPending = errors.New("steps pending")

// usageError is a mistake in how ferry was called.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func report(stderr io.Writer, name string, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errPending):
		return exitPending
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ferry %s: %s\n", name, ue.msg)
		return exitUsage
	}
	fmt.Fprintf(stderr, "ferry %s: %v\n", name, err)
	if h := hint(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return exitError
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: ferry <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n, c := range cmds {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'ferry <command> -h' for a command's flags.")
}

// flags makes a FlagSet that reports errors as usage errors instead of
// exiting.
func flags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: ferry %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: "unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	return nil
}

// version is set by the linker (-X main.version=...).
var version = "dev"

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fmt.Fprintln(e.stdout, "ferry", version)
	return nil
}
