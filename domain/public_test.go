package domain

import (
	"encoding/json"
	"testing"
)

func TestPublicDataDropsTokenHash(t *testing.T) {
	reg := NewRegistry()
	_, data, err := reg.Marshal(UserCreated{UserID: "u1", Email: "a@b.com", Role: RoleAdminAgent, TokenHash: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(PublicData(TypeUserCreated, data), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["tokenHash"]; ok {
		t.Errorf("public user.created still carries tokenHash: %v", got)
	}
	if got["userId"] != "u1" || got["email"] != "a@b.com" || got["role"] != RoleAdminAgent {
		t.Errorf("public user.created lost a field: %v", got)
	}
	other := []byte(`{"tagId":"t","name":"VIP"}`)
	if string(PublicData(TypeTagCreated, other)) != string(other) {
		t.Errorf("PublicData changed a tag.created event")
	}
}
