// gzipref: the reference rootseed.oci.gogzip is checked against. Reads stdin and writes
// Go's compress/gzip of it (DefaultCompression, no header fields, as BuildKit's
// util/compression/gzip.go does) to stdout.
//
// The input is handed to gzip.Writer.Write in pieces of -sizes bytes (a comma-separated
// list, used in turn; the last piece is what is left), default one size of 32768; only
// the sizes decide the pieces, not how the pipe delivers the bytes.
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gzipref:", err)
	os.Exit(1)
}

func main() {
	sizesFlag := flag.String("sizes", "32768", "comma-separated sizes of the Write calls, used in turn")
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
	buf := make([]byte, largest)
	for i := 0; ; i++ {
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
