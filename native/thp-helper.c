/*
 * thp-helper: runs the memory operations of a thpsim scenario in a real process, for
 * `thpsim oracle` (src/oracle/). It is our own code, written for thpsim (MIT licence).
 *
 * Usage: thp-helper ID CMD_FIFO REPLY_FIFO
 *
 * The process reads one command per line from CMD_FIFO and answers each with one JSON line on
 * REPLY_FIFO. `fork` makes a child that serves its own pair of FIFOs (named in the command), so
 * every simulated process of a scenario is one real process. Addresses and sizes are decimal.
 *
 *   mmap ADDR LEN ALIGN PROT      ADDR 0: anywhere (aligned to ALIGN if not 0), else fixed
 *   munmap ADDR LEN | mprotect ADDR LEN PROT | mremap ADDR OLDLEN NEWLEN TO (TO 0: may move)
 *   madvise ADDR LEN ADVICE       ADVICE: the MADV_* number
 *   touch ADDR LEN STRIDE WRITE   one access per STRIDE bytes; a write stores a fresh token in
 *                                 the first 8 bytes of the page (ID << 32 | counter)
 *   read ADDR                     the token of the page, without faulting it in (null: swapped)
 *   pages ADDR N                  per page: pagemap + kpageflags bits and the folio order
 *   smaps                         the smaps fields of every VMA
 *   prctl MODE                    PR_SET_THP_DISABLE: 0 off, 1 all, 2 except advised
 *   fork ID CMD_FIFO REPLY_FIFO   the child serves the new FIFOs; the parent answers its pid
 *   exit                          answers, then exits
 *
 * Page bits in `pages`: 1 present, 2 swapped, 4 exclusive (PM_MMAP_EXCLUSIVE), 8 zero page,
 * 16 THP (KPF_THP), 32 compound head, 64 compound tail, 128 anon; the folio order << 8. The
 * order is found as thpmaps does: from the head PFN, count the tail PFNs that follow it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif

#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)

#define KPF_ANON 12
#define KPF_HEAD 15
#define KPF_TAIL 16
#define KPF_THP 22
#define KPF_ZERO 24

/* The largest folio we look for (pages): 2^10, above any anonymous order on x86-64. */
#define MAX_FOLIO 1024

static FILE *in, *out;
static uint64_t token_base, token_seq;
static long page_size;
static int pagemap_fd = -1, kpageflags_fd = -1;
static sigjmp_buf segv_jmp;
static volatile sig_atomic_t segv_armed;

static void on_segv(int sig)
{
	(void)sig;
	if (segv_armed)
		siglongjmp(segv_jmp, 1);
	_exit(139);
}

static void reply_errno(int e)
{
	fprintf(out, "{\"ok\":0,\"errno\":\"%s\",\"msg\":\"%s\"}\n", strerrorname_np(e) ? strerrorname_np(e) : "E?",
		strerror(e));
	fflush(out);
}

static void reply_ok(void)
{
	fputs("{\"ok\":1}\n", out);
	fflush(out);
}

static int prot_of(const char *s)
{
	int p = PROT_NONE;

	if (strchr(s, 'r'))
		p |= PROT_READ;
	if (strchr(s, 'w'))
		p |= PROT_WRITE;
	if (strchr(s, 'x'))
		p |= PROT_EXEC;
	return p;
}

static int open_fifos(const char *cmd, const char *reply)
{
	int cfd = open(cmd, O_RDONLY);
	int rfd;

	if (cfd < 0)
		return -1;
	rfd = open(reply, O_WRONLY);
	if (rfd < 0)
		return -1;
	in = fdopen(cfd, "r");
	out = fdopen(rfd, "w");
	return in && out ? 0 : -1;
}

static void do_mmap(uintptr_t addr, size_t len, size_t align, const char *prot)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	char *p;

	if (addr) {
		p = mmap((void *)addr, len, prot_of(prot), flags | MAP_FIXED_NOREPLACE, -1, 0);
	} else if (align > (size_t)page_size) {
		/* Reserve len + align, keep the aligned part. */
		char *r = mmap(NULL, len + align, prot_of(prot), flags, -1, 0);
		uintptr_t a;

		if (r == MAP_FAILED) {
			reply_errno(errno);
			return;
		}
		a = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
		if (a > (uintptr_t)r)
			munmap(r, a - (uintptr_t)r);
		if ((uintptr_t)r + len + align > a + len)
			munmap((void *)(a + len), (uintptr_t)r + len + align - (a + len));
		p = (char *)a;
	} else {
		p = mmap(NULL, len, prot_of(prot), flags, -1, 0);
	}
	if (p == MAP_FAILED) {
		reply_errno(errno);
		return;
	}
	fprintf(out, "{\"ok\":1,\"addr\":%lu}\n", (unsigned long)p);
	fflush(out);
}

static volatile unsigned long touch_count;

static __attribute__((noinline)) void touch_loop(uintptr_t addr, size_t len, size_t stride,
						 int write)
{
	uintptr_t a;

	for (a = addr; a < addr + len; a += stride, touch_count++) {
		if (write) {
			uintptr_t page = a & ~(uintptr_t)(page_size - 1);

			*(volatile uint64_t *)page = token_base | ++token_seq;
		} else {
			(void)*(volatile char *)a;
		}
	}
}

static void do_touch(uintptr_t addr, size_t len, size_t stride, int write)
{
	int faulted;

	touch_count = 0;
	segv_armed = 1;
	faulted = sigsetjmp(segv_jmp, 1);
	if (!faulted)
		touch_loop(addr, len, stride ? stride : (size_t)page_size, write);
	segv_armed = 0;
	fprintf(out, "{\"ok\":1,\"outcome\":\"%s\",\"accesses\":%lu}\n",
		faulted ? "sigsegv" : "hit", touch_count);
	fflush(out);
}

static int read_entries(int fd, uint64_t *buf, uint64_t first, size_t n)
{
	size_t want = n * sizeof(uint64_t), got = 0;

	while (got < want) {
		ssize_t r = pread(fd, (char *)buf + got, want - got, (off_t)(first * 8 + got));

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void do_read(uintptr_t addr)
{
	uintptr_t page = addr & ~(uintptr_t)(page_size - 1);
	uint64_t pm;

	if (read_entries(pagemap_fd, &pm, page / (uintptr_t)page_size, 1)) {
		reply_errno(errno ? errno : EIO);
		return;
	}
	if (pm & PM_PRESENT)
		fprintf(out, "{\"ok\":1,\"v\":%llu}\n",
			(unsigned long long)*(volatile uint64_t *)page);
	else if (pm & PM_SWAP)
		fputs("{\"ok\":1,\"v\":null}\n", out);
	else
		fputs("{\"ok\":1,\"v\":0}\n", out);
	fflush(out);
}

/* The folio containing pfn: its head and number of pages (1 for a small folio). */
static int folio_of(uint64_t pfn, uint64_t flags, uint64_t *head, unsigned *nr)
{
	static uint64_t buf[MAX_FOLIO];
	uint64_t h = pfn;
	unsigned i, n;

	*head = pfn;
	*nr = 1;
	if (!(flags & (1ULL << (KPF_HEAD))) && !(flags & (1ULL << KPF_TAIL)))
		return 0;
	if (flags & (1ULL << KPF_TAIL)) {
		n = pfn < MAX_FOLIO - 1 ? (unsigned)pfn : MAX_FOLIO - 1;
		if (read_entries(kpageflags_fd, buf, pfn - n, n))
			return -1;
		for (i = n; i > 0; i--)
			if (!(buf[i - 1] & (1ULL << KPF_TAIL)))
				break;
		if (i == 0)
			return 0; /* no head within reach: report a small folio */
		h = pfn - n + (i - 1);
	}
	if (read_entries(kpageflags_fd, buf, h, MAX_FOLIO))
		return -1;
	for (n = 1; n < MAX_FOLIO && (buf[n] & (1ULL << KPF_TAIL)); n++)
		;
	*head = h;
	*nr = n;
	return 0;
}

static void do_pages(uintptr_t addr, size_t n)
{
	uint64_t *pm = calloc(n ? n : 1, sizeof(*pm));
	uint64_t cache_head = 0, flags;
	unsigned cache_nr = 0;
	size_t i;

	if (!pm || read_entries(pagemap_fd, pm, addr / (uintptr_t)page_size, n)) {
		free(pm);
		reply_errno(errno ? errno : EIO);
		return;
	}
	fputs("{\"ok\":1,\"p\":[", out);
	for (i = 0; i < n; i++) {
		unsigned code = 0, order = 0, nr;
		uint64_t pfn = pm[i] & PM_PFN_MASK, head;

		if (pm[i] & PM_PRESENT) {
			code |= 1;
			if (pm[i] & PM_EXCLUSIVE)
				code |= 4;
			if (read_entries(kpageflags_fd, &flags, pfn, 1)) {
				free(pm);
				fputs("]}\n", out);
				fflush(out);
				return;
			}
			if (flags & (1ULL << KPF_ZERO))
				code |= 8;
			if (flags & (1ULL << KPF_THP))
				code |= 16;
			if (flags & (1ULL << KPF_HEAD))
				code |= 32;
			if (flags & (1ULL << KPF_TAIL))
				code |= 64;
			if (flags & (1ULL << KPF_ANON))
				code |= 128;
			if (cache_nr && pfn >= cache_head && pfn < cache_head + cache_nr) {
				nr = cache_nr;
			} else if (folio_of(pfn, flags, &head, &nr) == 0) {
				cache_head = head;
				cache_nr = nr;
			} else {
				nr = 1;
			}
			while ((1u << (order + 1)) <= nr)
				order++;
		} else if (pm[i] & PM_SWAP) {
			code |= 2;
		}
		fprintf(out, "%s%u", i ? "," : "", code | order << 8);
	}
	fputs("]}\n", out);
	fflush(out);
	free(pm);
}

static void do_smaps(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int first = 1, open_vma = 0;

	if (!f) {
		reply_errno(errno);
		return;
	}
	fputs("{\"ok\":1,\"vmas\":[", out);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, kb;
		char key[64], perms[8];

		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			fprintf(out, "%s{\"start\":%lu,\"end\":%lu,\"perms\":\"%s\"", first ? "" : "},", s, e,
				perms);
			first = 0;
			open_vma = 1;
		} else if (open_vma && sscanf(line, "%63[A-Za-z_]: %lu kB", key, &kb) == 2) {
			fprintf(out, ",\"%s\":%lu", key, kb);
		}
	}
	fclose(f);
	fputs(open_vma ? "}]}\n" : "]}\n", out);
	fflush(out);
}

static void serve(void);

static void do_fork(unsigned long id, const char *cmd, const char *reply)
{
	pid_t pid;

	fflush(out);
	pid = fork();
	if (pid < 0) {
		reply_errno(errno);
		return;
	}
	if (pid == 0) {
		fclose(in);
		fclose(out);
		token_base = (uint64_t)id << 32;
		token_seq = 0;
		/* An open pagemap file stays bound to the parent's mm. */
		close(pagemap_fd);
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
		if (pagemap_fd < 0)
			_exit(3);
		if (open_fifos(cmd, reply))
			_exit(2);
		serve();
		_exit(0);
	}
	fprintf(out, "{\"ok\":1,\"pid\":%d}\n", (int)pid);
	fflush(out);
}

static void serve(void)
{
	char line[4096], op[32], a[1024], b[1024], c[64];
	unsigned long x, y, z, w;

	fprintf(out, "{\"ok\":1,\"hello\":1,\"pid\":%d,\"page_size\":%ld}\n", (int)getpid(), page_size);
	fflush(out);
	while (fgets(line, sizeof(line), in)) {
		if (sscanf(line, "%31s", op) != 1)
			continue;
		errno = 0;
		if (!strcmp(op, "mmap") &&
		    sscanf(line, "%*s %lu %lu %lu %63s", &x, &y, &z, c) == 4) {
			do_mmap(x, y, z, c);
		} else if (!strcmp(op, "munmap") && sscanf(line, "%*s %lu %lu", &x, &y) == 2) {
			munmap((void *)x, y) ? reply_errno(errno) : reply_ok();
		} else if (!strcmp(op, "mprotect") &&
			   sscanf(line, "%*s %lu %lu %63s", &x, &y, c) == 3) {
			mprotect((void *)x, y, prot_of(c)) ? reply_errno(errno) : reply_ok();
		} else if (!strcmp(op, "mremap") &&
			   sscanf(line, "%*s %lu %lu %lu %lu", &x, &y, &z, &w) == 4) {
			void *p = w ? mremap((void *)x, y, z, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)w)
				    : mremap((void *)x, y, z, MREMAP_MAYMOVE);

			if (p == MAP_FAILED)
				reply_errno(errno);
			else {
				fprintf(out, "{\"ok\":1,\"addr\":%lu}\n", (unsigned long)p);
				fflush(out);
			}
		} else if (!strcmp(op, "madvise") &&
			   sscanf(line, "%*s %lu %lu %lu", &x, &y, &z) == 3) {
			madvise((void *)x, y, (int)z) ? reply_errno(errno) : reply_ok();
		} else if (!strcmp(op, "touch") &&
			   sscanf(line, "%*s %lu %lu %lu %lu", &x, &y, &z, &w) == 4) {
			do_touch(x, y, z, (int)w);
		} else if (!strcmp(op, "read") && sscanf(line, "%*s %lu", &x) == 1) {
			do_read(x);
		} else if (!strcmp(op, "pages") && sscanf(line, "%*s %lu %lu", &x, &y) == 2) {
			do_pages(x, y);
		} else if (!strcmp(op, "smaps")) {
			do_smaps();
		} else if (!strcmp(op, "prctl") && sscanf(line, "%*s %lu", &x) == 1) {
			int r = x == 0 ? prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0)
				: x == 1 ? prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)
					 : prctl(PR_SET_THP_DISABLE, 1, 1 << 1, 0, 0);

			r ? reply_errno(errno) : reply_ok();
		} else if (!strcmp(op, "fork") &&
			   sscanf(line, "%*s %lu %1023s %1023s", &x, a, b) == 3) {
			do_fork(x, a, b);
		} else if (!strcmp(op, "exit")) {
			reply_ok();
			_exit(0);
		} else {
			fputs("{\"ok\":0,\"errno\":\"EPROTO\",\"msg\":\"bad command\"}\n", out);
			fflush(out);
		}
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc != 4) {
		fprintf(stderr, "usage: %s ID CMD_FIFO REPLY_FIFO\n", argv[0]);
		return 2;
	}
	page_size = sysconf(_SC_PAGESIZE);
	token_base = strtoull(argv[1], NULL, 10) << 32;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGCHLD, SIG_IGN); /* exited children are reaped by the kernel */
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	kpageflags_fd = open("/proc/kpageflags", O_RDONLY);
	if (pagemap_fd < 0 || kpageflags_fd < 0) {
		perror("thp-helper: open /proc/self/pagemap or /proc/kpageflags");
		return 3;
	}
	if (open_fifos(argv[2], argv[3])) {
		perror("thp-helper: open the FIFOs");
		return 4;
	}
	serve();
	return 0;
}
