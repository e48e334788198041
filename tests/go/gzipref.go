// gzipref: the reference rootseed.oci.gogzip is checked against. Reads stdin and writes
// Go's compress/gzip of it (DefaultCompression, no header fields, as BuildKit's
// util/compression/gzip.go does) to stdout.
//
// The input is handed to gzip.Writer.Write in pieces of -sizes bytes (a comma-separated
// list, used in turn; the last piece is what is left), default one size of 32768; only
// the sizes decide the pieces, not how the pipe delivers the bytes.
//
// With -buildkit the input is a tar, and it goes the way BuildKit v0.26.3's exporter
// sends a layer with rewrite-timestamp (util/converter/converter.go and
// util/converter/tarconverter): from a gzip blob through gzip.Reader, tar.Reader, the
// timestamp clamp (epoch 1), tar.Writer into an io.Pipe, and io.Copy into gzip.Writer.
// The pieces gzip.Writer gets are then BuildKit's; the output is BuildKit's blob for the
// tar that tar.Writer wrote (decompress it to get that tar).
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// writerOnly hides any ReadFrom, as BuildKit's onceWriteCloser does.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

func buildkit(in []byte, zw io.Writer) error {
	var blob bytes.Buffer
	gw := gzip.NewWriter(&blob)
	if _, err := gw.Write(in); err != nil {
		return err
	}
	if err := gw.Close(); err != nil {
		return err
	}
	src, err := gzip.NewReader(&blob)
	if err != nil {
		return err
	}
	epoch := time.Unix(1, 0)
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(src)
		tw := tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				tw.Close()
				_, err = io.Copy(io.Discard, src)
				pw.CloseWithError(err)
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if hdr.ModTime.After(epoch) {
				hdr.ModTime = epoch
			}
			if hdr.AccessTime.After(epoch) {
				hdr.AccessTime = epoch
			}
			if hdr.ChangeTime.After(epoch) {
				hdr.ChangeTime = epoch
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	_, err = io.Copy(writerOnly{zw}, pr)
	return err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gzipref:", err)
	os.Exit(1)
}

func main() {
	sizesFlag := flag.String("sizes", "32768", "comma-separated sizes of the Write calls, used in turn")
	buildkitFlag := flag.Bool("buildkit", false, "the input is a tar: write it as BuildKit's converter does")
	flag.Parse()
	var sizes []int
	largest := 0
	for _, field := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(field)
		if err != nil || n <= 0 {
			fail(fmt.Errorf("bad size %q", field))
		}
		sizes = append(sizes, n)
		largest = max(largest, n)
	}

	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := gzip.NewWriterLevel(out, gzip.DefaultCompression)
	if err != nil {
		fail(err)
	}
	if *buildkitFlag {
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			fail(err)
		}
		if err := buildkit(in, zw); err != nil {
			fail(err)
		}
	}
	buf := make([]byte, largest)
	for i := 0; !*buildkitFlag; i++ {
		got, err := io.ReadFull(in, buf[:sizes[i%len(sizes)]])
		if got > 0 {
			if _, werr := zw.Write(buf[:got]); werr != nil {
				fail(werr)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			fail(err)
		}
	}
	if err := zw.Close(); err != nil {
		fail(err)
	}
	if err := out.Flush(); err != nil {
		fail(err)
	}
}
