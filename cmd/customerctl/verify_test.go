package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/sqlite"
)

// tamperer changes stored events behind the store's back, in the backend's
// own SQL.
type tamperer interface {
	changeDataByte(t *testing.T, position int64)
	deleteEvent(t *testing.T, position int64)
	swapPositions(t *testing.T, a, b int64)
}

// appendInterleaved appends four events to each of streams A, B, C (partner
// p1) and D (partner p2), round-robin, so that with one event per append the
// positions are A1=1 B1=2 C1=3 D1=4 A2=5 B2=6 C2=7 D2=8 A3=9 ...
func appendInterleaved(t *testing.T, s eventstore.Store) {
	t.Helper()
	ctx := context.Background()
	for v := 1; v <= 4; v++ {
		for _, st := range []struct{ id, partner string }{{"customer-p1-A", "p1"}, {"customer-p1-B", "p1"}, {"customer-p1-C", "p1"}, {"customer-p2-D", "p2"}} {
			_, err := s.Append(ctx, eventstore.AppendRequest{StreamID: st.id, ExpectedVersion: int64(v - 1), Events: []eventstore.NewEvent{{
				ID: uuid.New(), Type: "customer.relationship_added", Subject: st.id,
				Data:     []byte(fmt.Sprintf(`{"customerId":%q,"relationship":"direct-bill","n":%d}`, st.id, v)),
				Metadata: eventstore.Metadata{PartnerID: st.partner, ActorID: "u1", ActorEmail: "a@p.com"},
			}}})
			if err != nil {
				t.Fatalf("appending to %s: %v", st.id, err)
			}
		}
	}
	head, err := s.Head(ctx)
	if err != nil || head != 16 {
		t.Fatalf("head %d (%v), want 16: the test relies on positions 1..16", head, err)
	}
}

// checkVerify runs the whole tamper scenario against one backend: the CLI is
// run in-process with env pointing at the store.
func checkVerify(t *testing.T, env map[string]string, tp tamperer) {
	t.Helper()
	stdout, stderr, code := runCLI(t, env, "audit", "verify")
	if code != 0 || stderr != "" || stdout != "ok: 4 streams, 16 events checked, every hash chain intact\n" {
		t.Fatalf("untouched store: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	tp.changeDataByte(t, 5)    // A2
	tp.deleteEvent(t, 6)       // B2
	tp.swapPositions(t, 7, 11) // C2 <-> C3

	stdout, stderr, code = runCLI(t, env, "audit", "verify")
	if code != 1 {
		t.Errorf("tampered store: exit %d, want 1", code)
	}
	want := "BROKEN customer-p1-A: first bad position 5: hash mismatch at version 2: the event's content was changed\n" +
		"BROKEN customer-p1-C: first bad position 7: reordered: version 2 is stored after version 3\n" +
		"BROKEN customer-p1-B: first bad position 10: missing version 2 (found version 3)\n"
	if stdout != want {
		t.Errorf("tampered store: stdout\n%s\nwant\n%s", stdout, want)
	}
	if stderr != "customerctl: audit verify: 3 of 4 streams broken (15 events checked)\n" {
		t.Errorf("tampered store: stderr %q", stderr)
	}

	// Partner p2's streams are intact: verifying only them succeeds.
	stdout, stderr, code = runCLI(t, env, "audit", "verify", "--partner", "p2")
	if code != 0 || stdout != "ok: 1 streams, 4 events checked, every hash chain intact\n" {
		t.Errorf("--partner p2: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	// An unknown partner is an error, not a clean bill of health.
	_, stderr, code = runCLI(t, env, "audit", "verify", "--partner", "nobody")
	if code != 1 {
		t.Errorf("--partner nobody: exit %d, want 1", code)
	}
	assertOneLine(t, stderr, "no events for this partner")
}

type sqliteTamper struct{ s *sqlite.Store }

func (x sqliteTamper) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	res, err := x.s.DB().ExecContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s %v: %d rows changed, want 1", q, args, n)
	}
}

func (x sqliteTamper) changeDataByte(t *testing.T, p int64) {
	x.exec(t, `UPDATE events SET data = CAST(replace(CAST(data AS TEXT), 'direct-bill', 'direct-bilL') AS BLOB) WHERE position = ?`, p)
}
func (x sqliteTamper) deleteEvent(t *testing.T, p int64) {
	x.exec(t, `DELETE FROM events WHERE position = ?`, p)
}
func (x sqliteTamper) swapPositions(t *testing.T, a, b int64) {
	x.exec(t, `UPDATE events SET position = -1 WHERE position = ?`, a)
	x.exec(t, `UPDATE events SET position = ? WHERE position = ?`, a, b)
	x.exec(t, `UPDATE events SET position = ? WHERE position = -1`, b)
}

func TestAuditVerifySQLite(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendInterleaved(t, s)
	checkVerify(t, map[string]string{"CUSTOMERD_DATA_DIR": dir}, sqliteTamper{s})
}

func TestAuditVerifyMissingStoreIsAnError(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLI(t, map[string]string{"CUSTOMERD_DATA_DIR": dir}, "audit", "verify")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	assertOneLine(t, stderr, "no event store at "+filepath.Join(dir, "events.db"))
	if !strings.HasPrefix(stderr, "customerctl: ") {
		t.Errorf("stderr %q", stderr)
	}
}
