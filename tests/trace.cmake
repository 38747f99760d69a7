# trace.cmake — tests of the trace store (recorder, readers, frame codec, importer).
if(NOT TARGET orrery_trace)
    return()
endif()
orrery_add_test(test_trace_recorder SOURCES test_trace_recorder.c LIBS orrery_trace LABELS trace)
orrery_add_test(test_trace_readers SOURCES test_trace_readers.c LIBS orrery_trace LABELS trace)
orrery_add_test(test_trace_frame SOURCES test_trace_frame.c LIBS orrery_trace LABELS trace)
