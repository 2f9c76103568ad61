package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// lossyStore stores the first appends and then reports an error, as a
// connection cut after the commit was sent does; with down, it stores
// nothing and fails every append.
type lossyStore struct {
	eventstore.Store
	lose  int32 // appends whose answer is lost after they are stored
	down  bool
	calls atomic.Int32
}

func (s *lossyStore) Append(ctx context.Context, reqs ...eventstore.AppendRequest) ([]eventstore.AppendResult, error) {
	n := s.calls.Add(1)
	if s.down {
		return nil, errors.New("dial tcp 127.0.0.1:5432: connection refused")
	}
	res, err := s.Store.Append(ctx, reqs...)
	if err == nil && n <= s.lose {
		return nil, errors.New("unexpected EOF")
	}
	return res, err
}

func TestAppendWithLostAnswerTakesEffectOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		reg := domain.NewRegistry()
		created, err := commands.New(store, reg).CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		if err != nil {
			t.Fatal(err)
		}
		before := len(allEvents(t, store))
		lossy := &lossyStore{Store: store, lose: 2}
		res, err := commands.New(lossy, reg).CreateOrder.Handle(ctx, meta, commands.CreateOrder{
			CustomerID: created.Customer.ID, Catalog: "azure", BillingCycle: "monthly",
			LineItems: []domain.LineItem{{OfferID: "offer-1", Quantity: 1}},
		})
		if err != nil {
			t.Fatalf("create order with two lost answers: %v", err)
		}
		evs := allEvents(t, store)
		if len(evs) != before+1 || evs[len(evs)-1].Type != domain.TypeOrderCreated {
			t.Fatalf("%d events after the order (want %d, the last order.created)", len(evs), before+1)
		}
		if res.Position != evs[len(evs)-1].Position {
			t.Errorf("answered position %d, stored at %d", res.Position, evs[len(evs)-1].Position)
		}
		if lossy.calls.Load() != 3 {
			t.Errorf("%d appends, want 3 (two answers lost, then the stored result)", lossy.calls.Load())
		}
	})
}

func TestUnreachableStoreIsUnavailable(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		down := &lossyStore{Store: store, down: true}
		_, err := commands.New(down, domain.NewRegistry()).CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		wantCode(t, err, domain.CodeUnavailable)
		if down.calls.Load() != 5 {
			t.Errorf("%d appends, want 5 (bounded resends)", down.calls.Load())
		}
	})
}
