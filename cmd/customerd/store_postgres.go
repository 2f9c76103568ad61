package main

import (
	"context"
	"errors"
)

// openPostgres opens the PostgreSQL backend. It is wired in when
// eventstore/postgres lands.
func openPostgres(ctx context.Context, url string) (Store, error) {
	return nil, errors.New("the PostgreSQL event store is not available in this build")
}
