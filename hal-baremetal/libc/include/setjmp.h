/* setjmp.h — non-local jumps for the bare-metal image (libc/setjmp.S). */
#ifndef BM_SETJMP_H
#define BM_SETJMP_H

/* rbx rbp r12 r13 r14 r15 rsp rip */
typedef long jmp_buf[8];

int setjmp(jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf env, int val);

#endif
