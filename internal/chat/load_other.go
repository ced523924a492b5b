//go:build !(amd64 || arm64)

package chat

import "encoding/binary"

// load64 reads d[i:i+8] as a little-endian word.
func load64(d []byte, i int) uint64 { return binary.LittleEndian.Uint64(d[i : i+8 : i+8]) }
