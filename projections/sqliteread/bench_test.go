package sqliteread_test

import (
	"context"
	"flag"
	"testing"

	"github.com/partnerhub/customers/projections"
)

var rebuildEvents = flag.Int("rebuild-events", 100_000, "events in the rebuild benchmarks (1000000 for the full target)")

// BenchmarkRebuild measures a rebuild from an in-memory log (genLog's mix:
// customers, tags, renames, orders over three partners): decode, fold,
// write the _new tables and the trigram index, swap. Run with
//
//	go test -run '^$' -bench Rebuild -benchtime 3x ./projections/sqliteread/
func BenchmarkRebuild(b *testing.B) {
	log := &memLog{events: genLog(*rebuildEvents, 9)}
	db := tempDB(b)
	for _, p := range []projections.Projector{db.CustomerList(), db.ActivityLog()} {
		b.Run(p.Name(), func(b *testing.B) {
			for b.Loop() {
				if err := p.Rebuild(context.Background(), log, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int64(b.N)*int64(len(log.events)))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
