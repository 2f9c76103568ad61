package commands

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/partnerhub/customers/domain"
)

// CreateUser creates a user of meta.PartnerID, which must exist.
type CreateUser struct {
	Email string
	Role  string
	// Token is the bearer token to give the user; empty generates a random
	// one. A supplied token (the operator's CUSTOMERD_BOOTSTRAP_TOKEN) must
	// have at least MinTokenLength characters and no spaces or control
	// characters.
	Token string
}

// MinTokenLength is the shortest caller-supplied token: 16 characters, so at
// least 128 bits when each character carries 8.
const MinTokenLength = 16

// UserResult carries the bearer token: it is shown once and stored nowhere.
type UserResult struct {
	ID       string
	Email    string
	Role     string
	Token    string
	Position int64
}

// HashToken is how a token is stored and looked up: hex SHA-256 of its text.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (c *core) createUser(ctx context.Context, meta Meta, cmd CreateUser) (UserResult, error) {
	if err := requirePartner(meta); err != nil {
		return UserResult{}, err
	}
	token := cmd.Token
	if token == "" {
		raw := make([]byte, 32)
		if _, err := io.ReadFull(c.random, raw); err != nil {
			return UserResult{}, fmt.Errorf("generating a token: %w", err)
		}
		token = base64.RawURLEncoding.EncodeToString(raw)
	} else if err := checkToken(token); err != nil {
		return UserResult{}, err
	}
	id := c.newID().String()
	var created domain.UserCreated
	u, err := c.run(ctx, meta, func(ctx context.Context, u *unit) error {
		var partner domain.Partner
		if _, err := u.load(ctx, domain.PartnerStream(meta.PartnerID), "", func(e domain.Event) { partner = domain.EvolvePartner(partner, e) }); err != nil {
			return err
		}
		if !partner.Exists {
			return domain.Errorf(domain.CodeNotFound, "partner %s not found", meta.PartnerID)
		}
		var user domain.User
		s, err := u.load(ctx, domain.UserStream(meta.PartnerID, id), "", func(e domain.Event) { user = domain.EvolveUser(user, e) })
		if err != nil {
			return err
		}
		evs, err := domain.DecideUser(user, domain.CreateUser{UserID: id, Email: cmd.Email, Role: cmd.Role, TokenHash: HashToken(token)})
		if err != nil {
			return err
		}
		created = evs[0].(domain.UserCreated)
		s.emit(evs...)
		s.claim("email/"+meta.PartnerID+"/"+created.Email, "email", "a user with e-mail "+created.Email+" already exists")
		return nil
	})
	if err != nil {
		return UserResult{}, err
	}
	return UserResult{ID: id, Email: created.Email, Role: created.Role, Token: token, Position: u.position()}, nil
}

func checkToken(token string) error {
	if len(token) < MinTokenLength {
		return domain.Invalid(domain.FieldError{Field: "token",
			Message: fmt.Sprintf("must have at least %d characters", MinTokenLength)})
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return domain.Invalid(domain.FieldError{Field: "token", Message: "must not contain spaces or control characters"})
	}
	return nil
}
