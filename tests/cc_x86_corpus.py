"""C programs for comparing the Python cc_x86 with the chain's (written here).

``ACCEPTED``: inside cc_x86's C subset, each exercising a part of it (the M1 must be the
same byte for byte). ``REJECTED``: inputs cc_x86 stops on with an error or dies on (both
must fail). ``EARLY_STOP``: top-level lines cc_x86 does not understand, where it stops
compiling and succeeds with what it has (the M1 must be the same too).
"""

from __future__ import annotations

ACCEPTED: dict[str, str] = {
    "empty": "",
    "only-comments": """/* a comment */ # a preprocessor line is skipped
#include <stdio.h>
/*/
/* an empty one: */ /**/ /* * / ** */
//
""",
    "globals-and-functions": """// CONSTANT TRUE 1
// CONSTANT FALSE 0
// CONSTANT BIG 0x7FFFFFFF
int counter;
char* message;
char** table;
int add(int a, int b);
int add(int a, int b)
{
	return a + b;
}
void bump() { counter = counter + 1; }
int main(int argc, char** argv)
{
	int i = 0;
	int total = FALSE;
	while(i < 10)
	{
		int j;
		for(j = 0; j < i; j = j + 1)
		{
			total = total + add(i, j) * 2;
			if(total > 100) break;
			else continue;
		}
		i = i + TRUE;
	}
	do { bump(); } while(counter < BIG);
	message = "hello, world\\n";
	return total;
}
""",
    "locals-depths": """int none() { int a; int b; return a - b; }
int one(int x) { int a = x; { int b = a; { int c = b; return c; } } }
int two(int x, char* y) { int a; char c; a = x; c = y[0]; return a + c; }
int main() { int a; int b = 2; return a + b; }
int after_main(int x) { int q; q = x; if(q) { int r; r = q; } return q; }
""",
    "operators": """int ops(int a, int b)
{
	int r;
	r = a + b - a * b / 3 % 7;
	r = a << 2 >> 1;
	r = a & b | a ^ b;
	r = a && b || !a;
	r = a < b; r = a <= b; r = a >= b; r = a > b; r = a == b; r = a != b;
	r = ~a;
	r = -a;
	r = -(a + b);
	r = (a + (b * (a - b)));
	return r;
}
""",
    "chars-and-strings": """char* s;
int f()
{
	char c = 'a';
	c = '\\n'; c = '\\t'; c = '\\\\'; c = '\\''; c = '"'; c = '\\x41'; c = '\\r'; c = '\\"';
	s = "plain text with spaces, digits 0123 and [brackets]";
	s = "tab\\there and newline\\n";
	s = "quote \\" inside";
	s = "colon after space :label";
	s = "colon after tab\\t:x";
	s = "carriage\\rreturn";
	s = "hex \\x41\\x42\\x7e and \\x7F";
	s = "";
	s = "cut \\x00 here";
	s = "high \\xff byte";
	return c;
}
""",
    "pointers-and-arrays": """char* buf;
int* ints;
char** words;
int f(int i)
{
	char* p = buf;
	p[i] = 'x';
	p[i + 1] = p[i];
	ints[i] = ints[i - 1] + 4;
	words[i] = words[0];
	words[1][2] = 'y';
	p = p + 1;
	return p[0] + ints[2] + words[i][i];
}
""",
    "structs": """struct node
{
	struct node* next;
	char* name;
	int value;
	char tag;
	char label[12];
	int slots[3];
	union
	{
		int number;
		char* text;
		struct node* child;
	};
	int after;
};

struct node* head;
struct pair { int a; int b; };

int size() { return sizeof(struct node) + sizeof(int) + sizeof(char) + sizeof(char*); }
int pairs() { return sizeof(struct pair); }
int walk(struct node* n)
{
	int total = 0;
	while(n != 0)
	{
		total = total + n->value + n->tag + n->after;
		n->name[0] = 'N';
		n->label[1] = n->tag;
		n->value = n->next->value;
		n->child = n->next;
		n->text = "child";
		n = n->next;
	}
	return total;
}
void set(struct pair* p) { p->a = 1; p->b = p->a; }
""",
    "function-pointers": """int twice(int x) { return x + x; }
int apply(FUNCTION f, int x)
{
	return f(x);
}
int main()
{
	FUNCTION g = twice;
	return apply(twice, 3) + g(4);
}
""",
    "goto-asm-labels": """int f(int x)
{
	asm("mov_eax, %42"
	"ret");
top:
	x = x - 1;
	if(x > 0) goto top;
	goto done;
done:
	return x;
}
void g() { asm("nop"); }
""",
    "nested-loops-break": """int f(int n)
{
	int i;
	int count = 0;
	for(i = 0; i < n; i = i + 1)
	{
		int j = 0;
		while(j < n)
		{
			int k;
			do
			{
				k = i + j;
				if(k == 5) break;
				count = count + 1;
			} while(k < 3);
			if(j == 2) break;
			j = j + 1;
		}
		if(i == 7) break;
	}
	for(;i;i = i - 1) { count = count - 1; }
	return count;
}
""",
    "types-and-promotion": """unsigned u;
long l;
FILE* out;
char c;
int f(char* a, char* b, int* p)
{
	char x;
	x = a[0] + b[0];
	a[1] = b[1] - a[2];
	p[1] = a[0];
	u = l + c;
	return x + u;
}
""",
}

REJECTED: dict[str, str] = {
    "unknown-type": "uint8_t x;\n",
    "undefined-symbol": "int f() { return y; }\n",
    "missing-semicolon": "int f() { int x = 1 return x; }\n",
    "break-outside-loop": "int f() { break; }\n",
    "unknown-escape": 'int f() { char* s = "\\q"; return 0; }\n',
    "no-such-member": "struct a { int x; };\nint f(struct a* p) { return p->y; }\n",
    "empty-condition": "int f() { for(;;) { } }\n",
    "dereference": "int f(int* p) { return *p; }\n",
    "struct-not-defined-inline": "int f(struct nope* p) { return 0; }\n",
    "bad-hex-escape": "int f() { return '\\xZZ'; }\n",
    "array-member-without-number": "struct a { int x[]; };\n",
    "ends-in-a-function": "int f() { return 1;\n",
    "ends-in-a-global": "int\n",
    "empty-for-step": "int f(int i) { for(;i;) { i = i - 1; } return i; }\n",
    "glued-operators": "int f(int x) { x=-1; return x; }\n",
    "cast": "int f(char* p) { return (int) p; }\n",
}

EARLY_STOP: dict[str, str] = {
    "initialised-global": "int a;\nint b = 1;\nint f() { return a; }\n",
    "array-global": "int f() { return 0; }\nchar buf[10];\nint g() { return 1; }\n",
    "unsigned-char": "unsigned char c;\n",
}
