// Package atomicfile replaces small files so that a crash, of the process or
// of the machine, leaves either the old content or the new, never a mix.
package atomicfile

import (
	"os"
	"path/filepath"
)

// TmpSuffix ends the name of the temporary file Write renames over its
// target; a crash can leave one behind, which the next start may remove.
const TmpSuffix = ".tmp"

// Write replaces path with b: a temporary file (path+TmpSuffix, mode 0600),
// fsynced, renamed over path, then the directory fsynced so that the rename
// itself survives a machine crash. A failed write (a full disk) leaves no
// temporary file. write, when not nil, writes b to the temporary file in
// place of f.Write (a test's hook).
func Write(path string, b []byte, write func(f *os.File, b []byte) error) error {
	tmp := path + TmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if write != nil {
		err = write(f, b)
	} else {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, so that the files created, renamed or removed
// in it stay so after a machine crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
