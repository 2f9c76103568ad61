package natsembed_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/internal/natsembed"
)

func TestJetStreamSurvivesRestartOnSamePortAndStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Options{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if addr == "127.0.0.1:4222" || addr == "127.0.0.1:0" {
		t.Fatalf("port 0 listened on %s, want a free port", addr)
	}

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("creating stream: %v", err)
	}
	if _, err := js.Publish(ctx, "s.a", []byte("hello")); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	nc.Close()
	srv.Shutdown()

	srv, err = natsembed.Start(natsembed.Options{Listen: addr, StoreDir: dir})
	if err != nil {
		t.Fatalf("restarting on %s: %v", addr, err)
	}
	defer srv.Shutdown()
	if srv.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", srv.Addr(), addr)
	}
	nc, err = nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Fatalf("message after restart = %q, want hello", msg.Data)
	}
}

func TestStartRejectsBadListenAddress(t *testing.T) {
	for _, listen := range []string{"nohost", "127.0.0.1:notaport", "127.0.0.1:70000"} {
		if _, err := natsembed.Start(natsembed.Options{Listen: listen, StoreDir: t.TempDir()}); err == nil {
			t.Errorf("Start(%q) succeeded, want an error", listen)
		}
	}
}
