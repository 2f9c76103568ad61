// Command customerd is the customer list service: HTTP API, event store,
// relay to NATS JetStream and projections in one process. Configuration:
// SPEC "Running" and README "Configuration".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// run returns the exit code: 0 after a clean shutdown, 2 for bad settings,
// 1 for a failure to start or a failure while running.
func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := LoadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "customerd: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		log.Error("starting customerd", "err", err)
		return 1
	}
	runErr := app.Run(ctx)
	if err := app.Close(); err != nil {
		log.Error("closing", "err", err)
	}
	if runErr != nil {
		log.Error("customerd stopped", "err", runErr)
		return 1
	}
	log.Info("customerd stopped")
	return 0
}
