// SPDX-License-Identifier: Apache-2.0
/*
 * kiln-probe: the test stand-in for kiln under kiln-jailer (test_jailer.c).
 * Static, so it runs in a chroot with no libraries; /proc is not mounted
 * there, so it reports what syscalls tell it, one fact a line:
 *   uid U E S / gid G E S / cap eff|prm|inh HEX / bnd COUNT / nnp 0|1
 *   rlimit nofile|fsize CUR MAX / pid P / sid S / arg I VALUE
 *   fds N (open descriptors above 2) / env N (environment entries)
 *   entry PATH TYPE MODE UID GID MAJOR MINOR   (a walk of "/")
 *   end
 * "--report FILE" writes to FILE instead of stdout (for --daemonize);
 * "--sleep" then prints "ready" and waits to be killed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern char **environ;

static void walk(FILE *out, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		fprintf(out, "entry %s %c %o %u %u %u %u\n", path,
		        S_ISDIR(st.st_mode)   ? 'd'
		        : S_ISCHR(st.st_mode) ? 'c'
		        : S_ISREG(st.st_mode) ? 'f'
		                              : '?',
		        st.st_mode & 07777, st.st_uid, st.st_gid, major(st.st_rdev),
		        minor(st.st_rdev));
		if (S_ISDIR(st.st_mode))
			walk(out, path);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct cap[2] = {{0}};
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	struct rlimit rl;
	FILE *out = stdout;
	int sleep_req = 0, bnd = 0, fds = 0, env = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sleep"))
			sleep_req = 1;
		if (!strcmp(argv[i], "--report") && i + 1 < argc)
			out = fopen(argv[i + 1], "w");
	}
	if (!out)
		return 3;
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	fprintf(out, "uid %u %u %u\ngid %u %u %u\n", ru, eu, su, rg, eg, sg);
	syscall(SYS_capget, &hdr, cap);
	fprintf(out, "cap eff %x%08x\ncap prm %x%08x\ncap inh %x%08x\n", cap[1].effective,
	        cap[0].effective, cap[1].permitted, cap[0].permitted, cap[1].inheritable,
	        cap[0].inheritable);
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			bnd++;
	fprintf(out, "bnd %d\nnnp %d\n", bnd, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	getrlimit(RLIMIT_NOFILE, &rl);
	fprintf(out, "rlimit nofile %llu %llu\n", (unsigned long long)rl.rlim_cur,
	        (unsigned long long)rl.rlim_max);
	getrlimit(RLIMIT_FSIZE, &rl);
	fprintf(out, "rlimit fsize %llu %llu\n", (unsigned long long)rl.rlim_cur,
	        (unsigned long long)rl.rlim_max);
	fprintf(out, "pid %d\nsid %d\n", (int)getpid(), (int)getsid(0));
	for (int i = 0; i < argc; i++)
		fprintf(out, "arg %d %s\n", i, argv[i]);
	for (int fd = 3; fd < 4096; fd++)
		fds += fcntl(fd, F_GETFD) >= 0 && (out == stdout || fd != fileno(out));
	for (char **e = environ; *e; e++)
		env++;
	fprintf(out, "fds %d\nenv %d\n", fds, env);
	walk(out, "/");
	fprintf(out, "end\n");
	if (sleep_req) {
		fprintf(out, "ready\n");
		fflush(out);
		for (;;)
			pause();
	}
	return fclose(out) ? 4 : 0;
}
