//go:build amd64 || arm64

package chat

import "unsafe"

// load64 reads d[i:i+8] as a little-endian word. The caller guarantees
// 0 <= i and i+8 <= len(d): on these little-endian platforms, which allow
// unaligned loads, it is a single load without bounds checks.
func load64(d []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(d)), i))
}
