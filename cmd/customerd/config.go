package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/eventstore/relay"
)

// Config is customerd's settings (SPEC "Running"). Each comes from a flag or,
// equally, an environment variable; a flag given on the command line wins.
type Config struct {
	Addr           string // CUSTOMERD_ADDR
	DataDir        string // CUSTOMERD_DATA_DIR
	DatabaseURL    string // CUSTOMERD_DATABASE_URL; "" means the embedded SQLite store
	NATSURL        string // CUSTOMERD_NATS_URL; "" means the embedded NATS server
	NATSListen     string // CUSTOMERD_NATS_LISTEN
	BootstrapToken string // CUSTOMERD_BOOTSTRAP_TOKEN

	// Advanced: the JetStream stream and subject root the relay publishes
	// to and the projectors consume. Only tests and several deployments
	// sharing one NATS server need other values than SPEC's.
	NATSStream      string // CUSTOMERD_NATS_STREAM
	NATSSubjectRoot string // CUSTOMERD_NATS_SUBJECT_ROOT
}

type setting struct {
	flag, env, def, usage string
	dst                   func(*Config) *string
}

func settings() []setting {
	return []setting{
		{"addr", "CUSTOMERD_ADDR", "127.0.0.1:8080", "HTTP listen address", func(c *Config) *string { return &c.Addr }},
		{"data-dir", "CUSTOMERD_DATA_DIR", "./data", "where the embedded store and embedded NATS keep their files", func(c *Config) *string { return &c.DataDir }},
		{"database-url", "CUSTOMERD_DATABASE_URL", "", "PostgreSQL connection string (default: embedded store)", func(c *Config) *string { return &c.DatabaseURL }},
		{"nats-url", "CUSTOMERD_NATS_URL", "", "NATS server URL (default: embedded NATS)", func(c *Config) *string { return &c.NATSURL }},
		{"nats-listen", "CUSTOMERD_NATS_LISTEN", "127.0.0.1:4223", "where the embedded NATS listens, for downstream consumers", func(c *Config) *string { return &c.NATSListen }},
		{"bootstrap-token", "CUSTOMERD_BOOTSTRAP_TOKEN", "", "first admin token on an empty store", func(c *Config) *string { return &c.BootstrapToken }},
		{"nats-stream", "CUSTOMERD_NATS_STREAM", relay.DefaultStream, "advanced: JetStream stream of the events", func(c *Config) *string { return &c.NATSStream }},
		{"nats-subject-root", "CUSTOMERD_NATS_SUBJECT_ROOT", relay.DefaultSubjectRoot, "advanced: first subject token of the events", func(c *Config) *string { return &c.NATSSubjectRoot }},
	}
}

// LoadConfig reads flags from args over environment variables over the
// defaults. It returns flag.ErrHelp for -h, after printing usage to usage.
func LoadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("customerd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings() {
		def := s.def
		if v, ok := lookup(getenv, s.env); ok {
			def = v
		}
		fs.StringVar(s.dst(&c), s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fmt.Fprintln(usage, "Usage: customerd [flags]")
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, nil
}

// lookup treats an empty variable as unset, so `VAR= customerd` means default.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// Validate reports every problem at once, joined on one line.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if err := checkHostPort(c.Addr); err != nil {
		add("CUSTOMERD_ADDR %q: %v", c.Addr, err)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		add("CUSTOMERD_DATA_DIR must not be empty")
	}
	if c.DatabaseURL != "" {
		if _, err := pgx.ParseConfig(c.DatabaseURL); err != nil {
			add("CUSTOMERD_DATABASE_URL is not a PostgreSQL connection string: %v", redact(err))
		}
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" || !validNATSScheme(pu.Scheme) {
				add("CUSTOMERD_NATS_URL %q: want nats://host:port (or tls://, ws://, wss://)", u)
			}
		}
	} else if err := checkHostPort(c.NATSListen); err != nil {
		add("CUSTOMERD_NATS_LISTEN %q: %v", c.NATSListen, err)
	}
	if strings.ContainsFunc(c.BootstrapToken, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		add("CUSTOMERD_BOOTSTRAP_TOKEN must not contain spaces or control characters")
	}
	if c.BootstrapToken != "" && len(c.BootstrapToken) < commands.MinTokenLength {
		add("CUSTOMERD_BOOTSTRAP_TOKEN must have at least %d characters", commands.MinTokenLength)
	}
	if !natsToken(c.NATSStream) {
		add("CUSTOMERD_NATS_STREAM %q: want a name without '.', '*', '>', '/' or spaces", c.NATSStream)
	}
	if !natsToken(c.NATSSubjectRoot) {
		add("CUSTOMERD_NATS_SUBJECT_ROOT %q: want one subject token without '.', '*', '>', '/' or spaces", c.NATSSubjectRoot)
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid configuration: " + strings.Join(problems, "; "))
}

// natsToken accepts what is valid both as a stream name and as a single
// subject token.
func natsToken(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r)
	})
}

func validNATSScheme(s string) bool {
	switch s {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

// redact keeps a parse error to one line and out of the password's way:
// pgx's messages can quote the connection string.
func redact(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.Contains(msg[:i], "://") {
		msg = msg[i+2:]
	}
	return strings.ReplaceAll(msg, "\n", " ")
}
