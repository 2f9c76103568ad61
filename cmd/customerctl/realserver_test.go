package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/httpapi"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
)

// TestAgainstTheRealServer drives the real HTTP API (httpapi over the
// PostgreSQL store and read models) with an operator-created token. The
// read models are fed by hand here instead of through NATS.
func TestAgainstTheRealServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	url := testenv.PostgresSchema(t)
	storeEnv := map[string]string{"CUSTOMERD_DATABASE_URL": url}
	_, token := createPartnerAndAdmin(t, storeEnv)

	store := openPG(t, url)
	db, err := pgread.Open(ctx, url, pgread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idem, err := httpapi.NewPostgresIdempotency(ctx, store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	list, log := db.CustomerList(), db.ActivityLog()
	waiter := projections.NewWaiter(50*time.Millisecond, list, log)
	srv, err := httpapi.New(httpapi.Config{
		Commands: httpapi.WriteSide{C: commands.New(store, domain.NewRegistry())}, Customers: httpapi.WriteSide{C: commands.New(store, domain.NewRegistry())},
		CustomerList: httpapi.ReadSide{List: list, Log: log}, Activity: httpapi.ReadSide{List: list, Log: log},
		Events: httpapi.StoreFeed{Store: store}, Users: httpapi.NewDirectory(store), Idempotency: idem,
		ListWaiter:     httpapi.ProjectionWaiter{W: waiter, Name: projections.CustomerListName},
		ActivityWaiter: httpapi.ProjectionWaiter{W: waiter, Name: projections.ActivityLogName},
		Ready:          func(context.Context) error { return nil },
		Registry:       prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	env := map[string]string{"CUSTOMERCTL_URL": hs.URL, "CUSTOMERCTL_TOKEN": token}
	cli := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := runCLI(t, env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d stderr %q", args, code, stderr)
		}
		return stdout
	}
	const id = "0b9a4b1c-6f7e-4a4c-9b1e-3c2d1e0f9a8b"
	cli("customers", "create", "--id", id, "--company-name", "Müller GmbH", "--domain", "mueller.de", "--relationship", "direct-bill", "--tag", "VIP")
	cli("customers", "add-relationship", id, "--relationship", "indirect-reseller")
	cli("billing", "update", id, "--company-name", "Müller AG", "--email", "ap@mueller.de", "--first-name", "Jo", "--last-name", "M",
		"--address-line1", "Hauptstr. 1", "--city", "Berlin", "--postal-code", "10115", "--country", "DE")
	out := cli("customers", "get", id)
	for _, want := range []string{"Müller AG", "direct-bill, indirect-reseller", "VIP", "Hauptstr. 1, 10115 Berlin, DE"} {
		if !strings.Contains(out, want) {
			t.Errorf("customers get lacks %q:\n%s", want, out)
		}
	}
	if out := cli("orders", "create", id, "--catalog", "azure", "--billing-cycle", "monthly", "--item", "offer-1:3:P1Y"); !strings.Contains(out, "pending") {
		t.Errorf("orders create:\n%s", out)
	}

	// A validation failure from the real server is one line.
	_, stderr, code := runCLI(t, env, "customers", "create", "--company-name", "X", "--domain", "not a domain", "--relationship", "direct-bill")
	if code != 1 || !strings.HasPrefix(stderr, "customerctl: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "primaryDomain") {
		t.Errorf("invalid domain: exit %d stderr %q", code, stderr)
	}

	// Feed the read models, then list and export.
	evs, err := store.ReadAll(ctx, eventstore.ReadRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := list.ApplyBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	out = cli("customers", "list", "--q", "muller")
	if strings.Count(out, id) != 2 || !strings.Contains(out, "Müller AG") {
		t.Errorf("customers list (one row per relationship):\n%s", out)
	}
	file := filepath.Join(t.TempDir(), "Customers.csv")
	cli("customers", "export", "-o", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "\ufeffMicrosoft ID,Company name,Primary domain name,Relationship,Tags\r\n" +
		id + ",Müller AG,mueller.de,Direct bill,VIP\r\n" + id + ",Müller AG,mueller.de,Indirect reseller,VIP\r\n"
	if string(b) != want {
		t.Errorf("Customers.csv\n%q\nwant\n%q", b, want)
	}
}
