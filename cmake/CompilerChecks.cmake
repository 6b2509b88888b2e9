# Warnings and sanitizers.
include(CheckCCompilerFlag)

set(BP_WARNING_FLAGS -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
    -Wno-unused-parameter -Wvla -Wpointer-arith)
if(BP_WERROR)
  list(APPEND BP_WARNING_FLAGS -Werror)
endif()

function(bp_add_warnings target)
  target_compile_options(${target} PRIVATE ${BP_WARNING_FLAGS})
endfunction()

if(BP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
