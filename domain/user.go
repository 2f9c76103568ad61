package domain

import (
	"encoding/hex"
	"strings"

	"github.com/google/uuid"
)

// User is the state of a user stream.
type User struct {
	ID     string
	Exists bool
	Email  string
	Role   string
}

// CreateUser creates a user. The caller generates the token and passes only
// its hex SHA-256.
type CreateUser struct {
	UserID    string
	Email     string
	Role      string
	TokenHash string
}

// NormalizeUserEmail validates an e-mail address and lower-cases it, the form
// under which it is unique per partner.
func NormalizeUserEmail(email string) (string, error) {
	e, err := NormalizeEmail(email)
	return strings.ToLower(e), err
}

// DecideUser decides CreateUser.
func DecideUser(u User, cmd CreateUser) ([]Event, error) {
	if u.Exists {
		return nil, Errorf(CodeConflict, "user %s already exists", u.ID)
	}
	var errs []FieldError
	email, err := NormalizeUserEmail(cmd.Email)
	if err != nil {
		errs = append(errs, fieldErr("email", "%v", err))
	}
	if cmd.Role != RoleAdminAgent && cmd.Role != RoleSalesAgent {
		errs = append(errs, fieldErr("role", "must be %q or %q", RoleAdminAgent, RoleSalesAgent))
	}
	if len(errs) > 0 {
		return nil, Invalid(errs...)
	}
	if _, err := uuid.Parse(cmd.UserID); err != nil {
		return nil, Errorf(CodeInvalid, "user id must be a UUID")
	}
	if h, err := hex.DecodeString(cmd.TokenHash); err != nil || len(h) != 32 {
		return nil, Errorf(CodeInvalid, "token hash must be a hex SHA-256")
	}
	return []Event{UserCreated{UserID: cmd.UserID, Email: email, Role: cmd.Role, TokenHash: strings.ToLower(cmd.TokenHash)}}, nil
}

// EvolveUser applies one event.
func EvolveUser(u User, e Event) User {
	if e, ok := e.(UserCreated); ok {
		u = User{ID: e.UserID, Exists: true, Email: e.Email, Role: e.Role}
	}
	return u
}

// Partner is the state of a partner stream.
type Partner struct {
	ID     string
	Exists bool
	Name   string
}

// CreatePartner creates a tenant.
type CreatePartner struct {
	PartnerID string
	Name      string
}

// DecidePartner decides CreatePartner.
func DecidePartner(p Partner, cmd CreatePartner) ([]Event, error) {
	if p.Exists {
		return nil, Errorf(CodeConflict, "partner %s already exists", p.ID)
	}
	var errs []FieldError
	name := normalizeCompanyName(&errs, "name", cmd.Name)
	if len(errs) > 0 {
		return nil, Invalid(errs...)
	}
	if _, err := uuid.Parse(cmd.PartnerID); err != nil {
		return nil, Errorf(CodeInvalid, "partner id must be a UUID")
	}
	return []Event{PartnerCreated{PartnerID: cmd.PartnerID, Name: name}}, nil
}

// EvolvePartner applies one event.
func EvolvePartner(p Partner, e Event) Partner {
	if e, ok := e.(PartnerCreated); ok {
		p = Partner{ID: e.PartnerID, Exists: true, Name: e.Name}
	}
	return p
}
