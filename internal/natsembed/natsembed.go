// Package natsembed runs a NATS server with JetStream inside the customerd
// process, so a single binary works without an external broker. It listens
// on a real TCP address so downstream consumers can attach to it.
package natsembed

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures the embedded server.
type Options struct {
	// Listen is host:port; port 0 (or -1) picks a free port, as net.Listen
	// does. (nats-server itself reads 0 as its default 4222.)
	Listen string
	// StoreDir is where JetStream keeps its files, e.g. <data dir>/nats.
	StoreDir string
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the listener; 0 means 10 s.
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server.
type Server struct {
	srv *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	host, portStr, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsembed: parsing listen address %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("natsembed: listen address %q: bad port", opts.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("natsembed: a store directory is required")
	}
	storeDir, err := filepath.Abs(opts.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("natsembed: resolving store directory: %w", err)
	}
	sopts := &server.Options{
		ServerName: "customerd-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		// The process owns signal handling; the server must not exit it.
		NoSigs: true,
		NoLog:  opts.Logger == nil,
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: creating server: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(slogAdapter{opts.Logger}, false, false, false)
	}
	srv.Start()
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: server on %s not ready after %s", opts.Listen, timeout)
	}
	return &Server{srv: srv}, nil
}

// ClientURL is the nats:// URL clients use to connect.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Addr is the address the server listens on (useful with port -1).
func (s *Server) Addr() string { return s.srv.Addr().String() }

// Shutdown stops the server and waits until it has flushed its stores.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// slogAdapter routes the server's printf-style log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
