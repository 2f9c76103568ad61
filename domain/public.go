package domain

import "encoding/json"

// PublicData returns an event's data as it may leave the service (NATS, the
// event feed). UserCreated's token hash stays inside: a bootstrap token is
// chosen by an operator and may be guessable, and a published hash would let
// anyone who reads the stream test guesses offline. Every other event is
// public as stored.
func PublicData(eventType string, data []byte) []byte {
	if eventType != TypeUserCreated {
		return data
	}
	var u UserCreated
	if err := json.Unmarshal(data, &u); err != nil {
		return data
	}
	public, err := json.Marshal(struct {
		UserID string `json:"userId"`
		Email  string `json:"email"`
		Role   string `json:"role"`
	}{u.UserID, u.Email, u.Role})
	if err != nil {
		return data
	}
	return public
}
