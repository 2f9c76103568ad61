package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/mattn/go-isatty"
)

// cli is what every command gets: the process's streams and environment,
// passed in so that tests run commands in-process.
type cli struct {
	stdout, stderr io.Writer
	env            func(string) string
}

// usageError is a bad invocation: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp asks for usage on stdout and exit 0.
var errHelp = errors.New("help requested")

// leaf is one runnable command, e.g. "customers list".
type leaf struct {
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

// groups is the command tree: group -> subcommand -> leaf.
func groups() map[string]map[string]leaf {
	return map[string]map[string]leaf{
		"partner":     {"create": {"create a partner (tenant); prints its id", partnerCreate}},
		"user":        {"create": {"create a user in the store; prints its token", userCreate}},
		"audit":       {"replay": {"print the activity log rebuilt from the event store", auditReplay}, "verify": {"check every stream's hash chain", auditVerify}},
		"projections": {"rebuild": {"replay read models from the event store", projectionsRebuild}},
		"customers": {
			"create":           {"create a customer", customersCreate},
			"list":             {"list and search customers", customersList},
			"get":              {"show one customer", customersGet},
			"add-relationship": {"add a relationship to a customer", customersAddRelationship},
			"export":           {"download Customers.csv", customersExport},
		},
		"billing": {"update": {"replace a customer's billing profile", billingUpdate}},
		"tags": {
			"list":   {"list the tag catalog", tagsList},
			"create": {"create a tag", tagsCreate},
			"rename": {"rename a tag", tagsRename},
			"delete": {"delete a tag", tagsDelete},
			"assign": {"assign and unassign tags on a customer", tagsAssign},
		},
		"orders": {
			"create":   {"place an order for a customer", ordersCreate},
			"list":     {"list a customer's orders", ordersList},
			"complete": {"complete a pending order", ordersComplete},
			"cancel":   {"cancel a pending order", ordersCancel},
		},
		"users":    {"create": {"create a user through the API (admin-agent token)", usersCreate}},
		"activity": {"list": {"show the activity log", activityList}, "export": {"download the activity log as CSV", activityExport}},
	}
}

// run executes one invocation and returns the exit code: 0 on success, 2 for
// usage errors, 1 for any other failure. Every failure is one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr, env: env}
	tree := groups()
	if len(args) == 0 || isHelp(args[0]) {
		if len(args) == 0 {
			fmt.Fprintln(stderr, "customerctl: missing command (see customerctl -h)")
			return 2
		}
		writeUsage(stdout, tree)
		return 0
	}
	group, ok := tree[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "customerctl: unknown command %q (see customerctl -h)\n", args[0])
		return 2
	}
	if len(args) < 2 || isHelp(args[1]) {
		if len(args) < 2 {
			fmt.Fprintf(stderr, "customerctl: %s: missing subcommand (one of %s)\n", args[0], strings.Join(names(group), ", "))
			return 2
		}
		writeGroupUsage(stdout, args[0], group)
		return 0
	}
	cmd, ok := group[args[1]]
	if !ok {
		fmt.Fprintf(stderr, "customerctl: %s: unknown subcommand %q (one of %s)\n", args[0], args[1], strings.Join(names(group), ", "))
		return 2
	}
	err := cmd.run(ctx, c, args[2:])
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "customerctl: %s %s: %s\n", args[0], args[1], oneLine(ue.msg))
		return 2
	default:
		fmt.Fprintf(stderr, "customerctl: %s\n", oneLine(err.Error()))
		return 1
	}
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

func names(group map[string]leaf) []string {
	var out []string
	for n := range group {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func writeUsage(w io.Writer, tree map[string]map[string]leaf) {
	fmt.Fprintln(w, "usage: customerctl <command> <subcommand> [flags]")
	fmt.Fprintln(w, "\nStore commands (CUSTOMERD_DATABASE_URL or CUSTOMERD_DATA_DIR, or --database-url / --data-dir):")
	var groupNames []string
	for g := range tree {
		groupNames = append(groupNames, g)
	}
	sort.Strings(groupNames)
	store := map[string]bool{"partner": true, "user": true, "audit": true, "projections": true}
	for _, pass := range []bool{true, false} {
		if !pass {
			fmt.Fprintln(w, "\nAPI commands (--url / --token or CUSTOMERCTL_URL / CUSTOMERCTL_TOKEN):")
		}
		for _, g := range groupNames {
			if store[g] != pass {
				continue
			}
			for _, s := range names(tree[g]) {
				fmt.Fprintf(w, "  %-30s %s\n", g+" "+s, tree[g][s].summary)
			}
		}
	}
	fmt.Fprintln(w, "\nRun 'customerctl <command> <subcommand> -h' for its flags.")
}

func writeGroupUsage(w io.Writer, name string, group map[string]leaf) {
	fmt.Fprintf(w, "usage: customerctl %s <subcommand> [flags]\n\n", name)
	for _, s := range names(group) {
		fmt.Fprintf(w, "  %-20s %s\n", s, group[s].summary)
	}
}

// oneLine keeps an error message on one line: wrapped driver errors sometimes
// carry newlines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// newFlags returns a flag set that reports nothing itself: run prints the one
// error line, and -h prints the flags on stdout.
func (c *cli) newFlags(usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(usage, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// flag calls Usage on every parse error too; it writes to the output,
	// which is io.Discard except when parse answers -h.
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: customerctl %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before, between or after positional
// arguments (`customers get ID --json`), which flag.Parse alone does not
// allow, and checks the number of positional arguments.
func (c *cli) parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(c.stdout)
				fs.Usage()
				fs.SetOutput(io.Discard)
				return nil, errHelp
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag.Parse swallows a "--" terminator: everything after it is
		// positional, even "-x".
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minPos {
		return nil, usagef("missing argument (usage: customerctl %s)", fs.Name())
	}
	if maxPos >= 0 && len(pos) > maxPos {
		return nil, usagef("unexpected argument %q", pos[maxPos])
	}
	return pos, nil
}

// required reports the first empty required flag as a usage error.
func required(flags ...[2]string) error {
	for _, f := range flags {
		if strings.TrimSpace(f[1]) == "" {
			return usagef("--%s is required", f[0])
		}
	}
	return nil
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// isTerminal reports whether w is an interactive terminal; only then do we
// draw progress bars that rewrite a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}
