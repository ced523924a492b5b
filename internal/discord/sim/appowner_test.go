package sim

import (
	"encoding/json"
	"testing"
)

// discord.py's login reads the application's owner from
// GET /oauth2/applications/@me (AppInfo: data['owner']) and fails without it.
func TestRESTApplicationHasOwner(t *testing.T) {
	s := newTestServer(t, Config{BotName: "bench-bot"})
	for _, path := range []string{"/oauth2/applications/@me", "/applications/@me"} {
		resp, b := get(t, s, path, s.Token())
		var app struct {
			ID    ID `json:"id"`
			Owner *struct {
				ID            ID      `json:"id"`
				Username      string  `json:"username"`
				Discriminator string  `json:"discriminator"`
				Avatar        *string `json:"avatar"`
			} `json:"owner"`
		}
		if err := json.Unmarshal(b, &app); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s %v", path, resp.StatusCode, b, err)
		}
		if app.Owner == nil {
			t.Fatalf("%s: no owner: %s", path, b)
		}
		if app.Owner.ID == 0 || app.Owner.ID == app.ID || app.Owner.Username != "bench-bot-owner" || app.Owner.Discriminator != "0" {
			t.Errorf("%s: owner %+v, want a user of its own named bench-bot-owner", path, *app.Owner)
		}
	}
}
