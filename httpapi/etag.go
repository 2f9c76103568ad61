package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/partnerhub/customers/eventstore"
)

// ETag is the strong, quoted customer stream version: version 7 is "7".
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads the expected customer version from If-Match: missing is 428;
// "*" is any version; an entity tag this API never issued (weak, not a
// version) can never match and is 412; anything unparseable is 400. Whether a
// well-formed version is stale is for the command to decide.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	switch {
	case v == "":
		return 0, &apiError{status: http.StatusPreconditionRequired, slug: "precondition-required",
			detail: "If-Match with the customer's ETag is required"}
	case v == "*":
		return eventstore.AnyVersion, nil
	case strings.Contains(v, ","):
		return 0, badRequest("If-Match must hold exactly one entity tag")
	case strings.HasPrefix(v, "W/"):
		return 0, stale()
	case len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"':
		return 0, badRequest("If-Match must be a quoted entity tag, as sent in ETag")
	}
	n, err := strconv.ParseInt(v[1:len(v)-1], 10, 64)
	if err != nil || n < 1 {
		return 0, stale()
	}
	return n, nil
}

func stale() *apiError {
	return &apiError{status: http.StatusPreconditionFailed, slug: "precondition-failed",
		detail: "the customer has changed since this ETag was issued"}
}
