package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The file handling that the segmented logs (Segments here, and store/wal)
// share: segment files are named by a 16-digit hexadecimal number and a
// suffix of their own, replayed in number order, and cut after the last
// good record when a crash tore the newest one.

// SegmentFile is one segment file of a directory.
type SegmentFile struct {
	Num  uint64
	Path string
}

// SegmentPath is the path of segment num in dir.
func SegmentPath(dir string, num uint64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", num, suffix))
}

// SegmentFiles lists the segment files of dir with the given suffix, in
// number order; other files are ignored.
func SegmentFiles(dir, suffix string) ([]SegmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []SegmentFile
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		segs = append(segs, SegmentFile{Num: num, Path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(segs, func(a, b SegmentFile) int { return cmpUint(a.Num, b.Num) })
	return segs, nil
}

// CutTorn handles a damaged record at offset off of the segment at path:
// what follows is lost, and when truncate is set (the newest segment, to
// which appends continue) the file is cut there. It returns the bytes lost.
func CutTorn(path string, off int64, truncate bool) (lost int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if truncate {
		if err := os.Truncate(path, off); err != nil {
			return 0, fmt.Errorf("truncate %s: %w", path, err)
		}
	}
	return st.Size() - off, nil
}

// SyncDir makes the creation and removal of files in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
