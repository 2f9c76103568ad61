package domain_test

import (
	"testing"

	"github.com/partnerhub/customers/domain"
)

func TestNormalizeEmailAcceptsLocalhostOnlyAsSingleLabel(t *testing.T) {
	for _, ok := range []string{"admin@localhost", " ada@contoso.com "} {
		if _, err := domain.NormalizeEmail(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"admin@intranet", "admin@LOCALHOST.", "admin@local host", "localhost"} {
		if _, err := domain.NormalizeEmail(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
