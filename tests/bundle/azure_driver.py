"""Run in a child interpreter: import a generated ``function_app.py`` and pass requests
through its registered function as ``azure.functions.HttpRequest`` objects.

Usage: python azure_driver.py PACKAGE_DIR CASES_JSON [SITE_PACKAGES]
Prints JSON: the trigger's auth level and route, the function.json the worker would
index, and per case the ``HttpResponse`` status, body and content type.
"""

import asyncio
import importlib
import json
import sys


def main() -> None:
    package, cases = sys.argv[1], json.loads(sys.argv[2])
    sys.path[:0] = [package, *sys.argv[3:]]
    import azure.functions as func

    module = importlib.import_module("function_app")
    functions = module.app.get_functions()
    assert len(functions) == 1, functions
    function = functions[0]
    trigger = function.get_trigger()
    handler = function.get_user_function()
    loop = asyncio.new_event_loop()
    results = []
    for case in cases:
        request = func.HttpRequest(
            method=case["method"],
            url="https://example.azurewebsites.net" + case["path"],
            headers=case.get("headers", {}),
            params=case.get("params", {}),
            body=case.get("body", "").encode(),
        )
        response = loop.run_until_complete(handler(request, None))
        assert isinstance(response, func.HttpResponse), type(response)
        results.append(
            {
                "status": response.status_code,
                "body": response.get_body().decode(),
                "content_type": response.mimetype or response.headers.get("content-type"),
            }
        )
    # The app's lifespan runs on this loop: end it here, or AsgiFunctionApp.__del__
    # waits for it on a new loop at interpreter exit, forever.
    if module.app.startup_task_done:
        loop.run_until_complete(module.app.middleware.notify_shutdown())
        module.app.startup_task_done = False
    print(
        json.dumps(
            {
                "auth_level": trigger.auth_level.name,
                "route": trigger.route,
                "function_json": json.loads(function.get_function_json()),
                "module_file": module.__file__,
                "func_file": func.__file__,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
