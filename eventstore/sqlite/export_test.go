package sqlite

import "context"

// OpenWithHook opens a store that calls beforeCommit inside every append
// transaction after its events are written; an error rolls the append back.
// The conformance suite's gap-safety test uses it.
func OpenWithHook(ctx context.Context, path string, beforeCommit func(ctx context.Context) error) (*Store, error) {
	s, err := Open(ctx, path)
	if err != nil {
		return nil, err
	}
	s.beforeCommit = beforeCommit
	return s, nil
}
