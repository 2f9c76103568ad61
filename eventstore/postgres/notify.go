package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// committed runs after every successful append: local subscribers are woken
// directly, other processes through one coalesced pg_notify. NOTIFY is not
// sent inside the append because PostgreSQL serializes notifying commits
// on a global lock.
func (s *Store) committed() {
	s.wakeSubscribers()
	select {
	case s.notifySig <- struct{}{}:
	default: // a notification is already due; it covers this append too
	}
}

func (s *Store) wakeSubscribers() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

const notifyGap = 2 * time.Millisecond

// notifier sends at most one pg_notify at a time for any number of appends.
func (s *Store) notifier() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.notifySig:
		}
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, '')", s.channel)
		cancel()
		if err != nil {
			// Subscribers elsewhere fall back to polling.
			s.reportError(fmt.Errorf("eventstore/postgres: notifying: %w", err))
		}
		// Every NOTIFY wakes every listening session of the database; a
		// short pause bounds that to a few hundred a second under load,
		// at the cost of a little latency for other processes.
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(notifyGap):
		}
	}
}

// listen keeps a dedicated LISTEN connection, reconnecting after drops, and
// wakes local subscribers on every notification. After a reconnect it wakes
// them too, since notifications may have been missed meanwhile.
func (s *Store) listen(cfg *pgx.ConnConfig) {
	backoff := 50 * time.Millisecond
	for s.ctx.Err() == nil {
		err := s.listenOnce(cfg, func() { backoff = 50 * time.Millisecond })
		if s.ctx.Err() != nil {
			return
		}
		s.reportError(fmt.Errorf("eventstore/postgres: listening for appends: %w", err))
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listenOnce(cfg *pgx.ConnConfig, connected func()) error {
	ctx := s.ctx
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	s.wakeSubscribers()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wakeSubscribers()
	}
}
