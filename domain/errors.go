package domain

import (
	"errors"
	"fmt"
)

// Code classifies an application error. The HTTP layer maps codes to status
// codes in one place; the domain never knows about HTTP.
type Code string

const (
	CodeInvalid      Code = "invalid"      // 422 (400 for unparseable input)
	CodeNotFound     Code = "not_found"    // 404
	CodeConflict     Code = "conflict"     // 409
	CodeForbidden    Code = "forbidden"    // 403
	CodeUnauthorized Code = "unauthorized" // 401
	CodePrecondition Code = "precondition" // 412: stale If-Match
	CodeUnavailable  Code = "unavailable"  // 503
)

// FieldError names one invalid field, using the JSON path the client sent
// (for example "billingProfile.defaultAddress.postalCode").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an application error with a code, a human message and, for
// validation, the failing fields.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s: %s: %s", e.Message, e.Fields[0].Field, e.Fields[0].Message)
}

// Errorf builds an Error of the given code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds a validation error from field errors.
func Invalid(fields ...FieldError) *Error {
	return &Error{Code: CodeInvalid, Message: "validation failed", Fields: fields}
}

// ErrorCode returns the code of the first *Error in err's chain, or "" if
// there is none (an internal error).
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
