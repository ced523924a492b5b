package sim

import "time"

// appOwnerObject is the partial user object of the application's owner, which
// GET /oauth2/applications/@me carries as "owner" on Discord (discord.py reads
// it when it logs in). The simulator's application belongs to a fixed user
// that is not a member of any guild.
func (s *Server) appOwnerObject() map[string]any {
	id := IDFromTime(time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC)) | simWorker<<17 | simProcess<<12
	return map[string]any{
		"id": id, "username": s.bot.Username + "-owner", "global_name": nil, "discriminator": "0",
		"avatar": nil, "public_flags": 0, "flags": 0,
	}
}
