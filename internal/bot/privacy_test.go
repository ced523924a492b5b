package bot

import (
	"strings"
	"testing"

	"github.com/cordstream/cordstream/internal/chat"
)

func TestContentModes(t *testing.T) {
	tests := []struct {
		mode ContentMode
		in   *string
		want *string
	}{
		{ContentKeep, chat.Ptr("héllo"), chat.Ptr("héllo")},
		{ContentDrop, chat.Ptr("héllo"), nil},
		// sha256("hello") is well known.
		{ContentHash, chat.Ptr("hello"), chat.Ptr("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")},
		{ContentHash, chat.Ptr(""), chat.Ptr("")},
		{ContentHash, nil, nil},
		{ContentKeep, nil, nil},
	}
	for _, tt := range tests {
		m := chat.Message{Content: tt.in}
		tt.mode.Apply(&m)
		got, want := "<nil>", "<nil>"
		if m.Content != nil {
			got = *m.Content
		}
		if tt.want != nil {
			want = *tt.want
		}
		if got != want {
			t.Errorf("%s(%v) = %q, want %q", tt.mode, tt.in, got, want)
		}
	}
}

func TestParseContentMode(t *testing.T) {
	for _, s := range []string{"keep", "drop", "hash"} {
		if m, err := ParseContentMode(s); err != nil || string(m) != s {
			t.Errorf("ParseContentMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseContentMode("redact"); err == nil || !strings.Contains(err.Error(), "keep, drop or hash") {
		t.Errorf("ParseContentMode(redact) err = %v", err)
	}
}
