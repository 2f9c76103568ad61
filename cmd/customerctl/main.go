// Command customerctl is the operator CLI: it creates partners and users and
// audits the event log by opening the store directly, and drives the HTTP API
// for everything else. See SPEC "Running" and "Audit".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
