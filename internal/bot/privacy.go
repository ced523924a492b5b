package bot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/cordstream/cordstream/internal/chat"
)

// ContentMode says what happens to message text before it is published.
type ContentMode string

// The content modes.
const (
	// ContentKeep publishes the text as Discord sent it.
	ContentKeep ContentMode = "keep"
	// ContentDrop publishes content as null.
	ContentDrop ContentMode = "drop"
	// ContentHash publishes "sha256:<64 hex digits>" of the UTF-8 text: equal
	// texts stay comparable, the text itself is not published. An empty text
	// stays empty. Note that short, common texts can be guessed by hashing
	// candidates: this hides content from casual readers, not from an
	// attacker with a dictionary.
	ContentHash ContentMode = "hash"
)

// ParseContentMode parses keep, drop or hash.
func ParseContentMode(s string) (ContentMode, error) {
	switch m := ContentMode(s); m {
	case ContentKeep, ContentDrop, ContentHash:
		return m, nil
	}
	return "", fmt.Errorf("content mode %q: want keep, drop or hash", s)
}

// Apply rewrites m.Content according to the mode.
func (c ContentMode) Apply(m *chat.Message) {
	switch c {
	case ContentDrop:
		m.Content = nil
	case ContentHash:
		if m.Content != nil && *m.Content != "" {
			sum := sha256.Sum256([]byte(*m.Content))
			m.Content = chat.Ptr("sha256:" + hex.EncodeToString(sum[:]))
		}
	}
}
