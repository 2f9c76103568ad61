// Package httpapi is the HTTP API of SPEC "HTTP API": problem+json errors,
// authentication and the role table, idempotent POSTs, ETags, and the
// endpoints, wired to the command handlers and read models through small
// interfaces declared here.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/partnerhub/customers/domain"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type          string              `json:"type"`
	Title         string              `json:"title"`
	Status        int                 `json:"status"`
	Detail        string              `json:"detail,omitempty"`
	CorrelationID string              `json:"correlationId,omitempty"`
	Errors        []domain.FieldError `json:"errors,omitempty"`
}

// problemBase prefixes every problem type; the slug says which kind it is.
const problemBase = "https://partnerhub.dev/problems/"

// apiError is a transport-level failure (bad query parameter, body too large,
// missing If-Match) with its status decided here rather than by a domain code.
type apiError struct {
	status     int
	slug       string
	detail     string
	fields     []domain.FieldError
	retryAfter int // seconds; 0 means no Retry-After header
	header     http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.slug, e.detail) }

func badRequest(detail string, fields ...domain.FieldError) *apiError {
	return &apiError{status: http.StatusBadRequest, slug: "bad-request", detail: detail, fields: fields}
}

func badParam(name, msg string) *apiError {
	return badRequest("invalid query parameter", domain.FieldError{Field: name, Message: msg})
}

func notFound() *apiError {
	return &apiError{status: http.StatusNotFound, slug: "not-found", detail: "no such resource"}
}

// statusOf is the one mapping from domain error codes to HTTP statuses.
func statusOf(code domain.Code) (status int, slug string) {
	switch code {
	case domain.CodeInvalid:
		return http.StatusUnprocessableEntity, "validation"
	case domain.CodeNotFound:
		return http.StatusNotFound, "not-found"
	case domain.CodeConflict:
		return http.StatusConflict, "conflict"
	case domain.CodeForbidden:
		return http.StatusForbidden, "forbidden"
	case domain.CodeUnauthorized:
		return http.StatusUnauthorized, "unauthorized"
	case domain.CodePrecondition:
		return http.StatusPreconditionFailed, "precondition-failed"
	case domain.CodeUnavailable:
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// writeError answers err as a problem. Errors without a code are internal:
// they are logged and the client sees a generic detail only.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ae *apiError
	var de *domain.Error
	switch {
	case errors.As(err, &ae):
		for k, v := range ae.header {
			w.Header()[k] = v
		}
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
		}
		writeProblem(w, r, ae.status, ae.slug, ae.detail, ae.fields)
	case errors.As(err, &de):
		status, slug := statusOf(de.Code)
		if status == http.StatusInternalServerError {
			log.ErrorContext(r.Context(), "unknown error code", "code", de.Code, "err", err)
			writeProblem(w, r, status, slug, "internal error", nil)
			return
		}
		switch status {
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "1")
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="customers"`)
		}
		writeProblem(w, r, status, slug, de.Message, de.Fields)
	default:
		log.ErrorContext(r.Context(), "internal error", "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "internal error", nil)
	}
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, detail string, fields []domain.FieldError) {
	p := Problem{
		Type:          problemBase + slug,
		Title:         http.StatusText(status),
		Status:        status,
		Detail:        detail,
		CorrelationID: CorrelationID(r.Context()),
		Errors:        fields,
	}
	body, _ := json.Marshal(p) // a Problem always encodes
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}
