using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Strata.Models.Chat;

namespace Strata.Models.Tests.Chat;

/// <summary>
/// The real templates of five model families render the prompts those models were trained on. Expected strings are
/// written by hand from each family's documented format, not produced by this interpreter.
/// </summary>
public sealed class RealTemplateTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "Answer briefly."),
        new("user", "Hello"),
        new("assistant", "Hi there!"),
        new("user", "How are you?"),
    ];

    private static readonly ChatMessage[] UserOnly = [new("user", "Hello")];

    private static string Render(string template, IReadOnlyList<ChatMessage> messages, bool generation, string bos, string eos,
        Dictionary<string, object?>? variables = null) =>
        ChatTemplate.Parse(template).Render(messages, new ChatTemplateOptions
        {
            AddGenerationPrompt = generation,
            BosToken = bos,
            EosToken = eos,
            Variables = variables ?? [],
        });

    [Fact]
    public void Templates_are_the_verbatim_text()
    {
        // Guards the copied strings against edits (an editor trimming whitespace, a hand "fix").
        static string Sha(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

        Assert.Equal("e8d5b5a546d3f19df16a5320c614fab05bdc4edd50e850f1afd947b503ea41cf", Sha(RealTemplates.Llama2Chat));
        Assert.Equal("ba03a121d097859c7b5b9cd03af99aafe95275210d2876f642ad9929a150f122", Sha(RealTemplates.Llama3Instruct));
        Assert.Equal("e10ca381b1ccc5cf9db52e371f3b6651576caee0a630b452e2816b2d404d4b65", Sha(RealTemplates.Llama31Instruct));
        Assert.Equal("7e995b379ec01747807246483647cd99030abf331653f1119e16d7ac041a3495", Sha(RealTemplates.MistralInstructV01));
        Assert.Equal("26a59556925c987317ce5291811ba3b7f32ec4c647c400c6cc7e3a9993007ba7", Sha(RealTemplates.MistralInstructV02));
        Assert.Equal("793202280c0910ab26bc6eb57c8212c2417324c6d8c4efd0d10d59092ab3e3eb", Sha(RealTemplates.Qwen2Instruct));
        Assert.Equal("cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f", Sha(RealTemplates.Qwen25Instruct));
        Assert.Equal("872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788", Sha(RealTemplates.SmolLM2Instruct));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Llama2_puts_the_system_prompt_inside_the_first_instruction(bool generation)
    {
        // Llama 2 has no generation prompt: the model answers right after [/INST] either way.
        Assert.Equal(
            "<s>[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\nHello [/INST] Hi there! </s><s>[INST] How are you? [/INST]",
            Render(RealTemplates.Llama2Chat, Conversation, generation, "<s>", "</s>"));
        Assert.Equal("<s>[INST] Hello [/INST]", Render(RealTemplates.Llama2Chat, UserOnly, generation, "<s>", "</s>"));
    }

    [Fact]
    public void Llama3_wraps_each_turn_in_headers()
    {
        const string turns =
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>";
        const string header = "<|start_header_id|>assistant<|end_header_id|>\n\n";

        Assert.Equal(turns, Render(RealTemplates.Llama3Instruct, Conversation, false, "<|begin_of_text|>", "<|eot_id|>"));
        Assert.Equal(turns + header, Render(RealTemplates.Llama3Instruct, Conversation, true, "<|begin_of_text|>", "<|eot_id|>"));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
            Render(RealTemplates.Llama3Instruct, UserOnly, false, "<|begin_of_text|>", "<|eot_id|>"));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" + header,
            Render(RealTemplates.Llama3Instruct, UserOnly, true, "<|begin_of_text|>", "<|eot_id|>"));
    }

    [Fact]
    public void Llama31_adds_the_knowledge_and_today_dates_to_the_system_turn()
    {
        const string system = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
        const string header = "<|start_header_id|>assistant<|end_header_id|>\n\n";

        Assert.Equal(
            system + "Answer briefly.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>" + header,
            Render(RealTemplates.Llama31Instruct, Conversation, true, "<|begin_of_text|>", "<|eot_id|>"));
        Assert.Equal(system + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
            Render(RealTemplates.Llama31Instruct, UserOnly, false, "<|begin_of_text|>", "<|eot_id|>"));
        Assert.Equal(system + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" + header,
            Render(RealTemplates.Llama31Instruct, UserOnly, true, "<|begin_of_text|>", "<|eot_id|>"));
    }

    [Fact]
    public void Llama31_takes_the_date_from_a_variable()
    {
        string prompt = Render(RealTemplates.Llama31Instruct, UserOnly, false, "<|begin_of_text|>", "<|eot_id|>",
            new() { ["date_string"] = "01 Jan 2026" });

        Assert.Contains("\nToday Date: 01 Jan 2026\n\n<|eot_id|>", prompt, StringComparison.Ordinal);
    }

    [Fact]
    public void Llama31_puts_tools_in_the_first_user_turn_as_indented_json()
    {
        var tools = JsonDocument.Parse("""[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]""");
        ChatMessage[] messages = [new("system", "Answer briefly."), new("user", "Weather in Paris?")];

        string prompt = Render(RealTemplates.Llama31Instruct, messages, true, "<|begin_of_text|>", "<|eot_id|>",
            new() { ["tools"] = tools.RootElement });

        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
            + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nAnswer briefly.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\n"
            + "Given the following functions, please respond with a JSON for a function call with its proper arguments "
            + "that best answers the given prompt.\n\n"
            + "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}."
            + "Do not use variables.\n\n"
            + "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n"
            + "        \"parameters\": {\n            \"type\": \"object\"\n        }\n    }\n}\n\n"
            + "Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            prompt);
    }

    [Fact]
    public void Mistral_joins_instructions_and_answers()
    {
        ChatMessage[] chat = [new("user", "Hello"), new("assistant", "Hi there!"), new("user", "How are you?")];

        // v0.1 as first published put a space after each answer's </s>; v0.2 dropped it.
        Assert.Equal("<s>[INST] Hello [/INST]Hi there!</s> [INST] How are you? [/INST]",
            Render(RealTemplates.MistralInstructV01, chat, true, "<s>", "</s>"));
        Assert.Equal("<s>[INST] Hello [/INST]Hi there!</s>[INST] How are you? [/INST]",
            Render(RealTemplates.MistralInstructV02, chat, true, "<s>", "</s>"));
        foreach (bool generation in new[] { false, true })
        {
            Assert.Equal("<s>[INST] Hello [/INST]", Render(RealTemplates.MistralInstructV01, UserOnly, generation, "<s>", "</s>"));
            Assert.Equal("<s>[INST] Hello [/INST]", Render(RealTemplates.MistralInstructV02, UserOnly, generation, "<s>", "</s>"));
        }
    }

    [Fact]
    public void Qwen2_uses_chatml_with_a_default_system_prompt()
    {
        const string turns = "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            + "<|im_start|>assistant\nHi there!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n";
        const string user = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n";

        Assert.Equal(turns, Render(RealTemplates.Qwen2Instruct, Conversation, false, "", "<|im_end|>"));
        Assert.Equal(turns + "<|im_start|>assistant\n", Render(RealTemplates.Qwen2Instruct, Conversation, true, "", "<|im_end|>"));
        Assert.Equal(user, Render(RealTemplates.Qwen2Instruct, UserOnly, false, "", "<|im_end|>"));
        Assert.Equal(user + "<|im_start|>assistant\n", Render(RealTemplates.Qwen2Instruct, UserOnly, true, "", "<|im_end|>"));
    }

    [Fact]
    public void Qwen25_without_tools_is_chatml_with_its_own_default_system_prompt()
    {
        const string turns = "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            + "<|im_start|>assistant\nHi there!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n";
        const string user = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHello<|im_end|>\n";

        Assert.Equal(turns, Render(RealTemplates.Qwen25Instruct, Conversation, false, "", "<|im_end|>"));
        Assert.Equal(turns + "<|im_start|>assistant\n", Render(RealTemplates.Qwen25Instruct, Conversation, true, "", "<|im_end|>"));
        Assert.Equal(user, Render(RealTemplates.Qwen25Instruct, UserOnly, false, "", "<|im_end|>"));
        Assert.Equal(user + "<|im_start|>assistant\n", Render(RealTemplates.Qwen25Instruct, UserOnly, true, "", "<|im_end|>"));
    }

    [Fact]
    public void Qwen25_lists_tools_in_the_system_turn()
    {
        var tools = JsonDocument.Parse("""[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]""");

        string prompt = Render(RealTemplates.Qwen25Instruct, [new("user", "Weather?")], true, "", "<|im_end|>",
            new() { ["tools"] = tools.RootElement });

        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
            + "You may call one or more functions to assist with the user query.\n\n"
            + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            + "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}\n"
            + "</tools>\n\nFor each function call, return a json object with function name and arguments within "
            + "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
            + "</tool_call><|im_end|>\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n",
            prompt);
    }

    [Fact]
    public void Qwen25_renders_tool_calls_and_results_passed_as_json_messages()
    {
        var messages = JsonDocument.Parse("""
            [{"role": "user", "content": "Weather?"},
             {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
             {"role": "tool", "content": "sunny"}]
            """);

        string prompt = Render(RealTemplates.Qwen25Instruct, [], true, "", "<|im_end|>",
            new() { ["messages"] = messages.RootElement });

        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nWeather?<|im_end|>\n"
            + "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
            + "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
            prompt);
    }

    [Fact]
    public void SmolLM2_uses_chatml_with_its_default_system_prompt()
    {
        const string user = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nHello<|im_end|>\n";
        const string turns = "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            + "<|im_start|>assistant\nHi there!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n";

        Assert.Equal(user, Render(RealTemplates.SmolLM2Instruct, UserOnly, false, "<|im_start|>", "<|im_end|>"));
        Assert.Equal(user + "<|im_start|>assistant\n", Render(RealTemplates.SmolLM2Instruct, UserOnly, true, "<|im_start|>", "<|im_end|>"));
        Assert.Equal(turns + "<|im_start|>assistant\n", Render(RealTemplates.SmolLM2Instruct, Conversation, true, "<|im_start|>", "<|im_end|>"));
    }

    [Fact]
    public void Roles_that_do_not_alternate_are_rejected_with_the_templates_message()
    {
        ChatMessage[] twoUsers = [new("user", "a"), new("user", "b")];

        foreach (string template in new[] { RealTemplates.Llama2Chat, RealTemplates.MistralInstructV01 })
        {
            var ex = Assert.Throws<ChatTemplateException>(() => Render(template, twoUsers, true, "<s>", "</s>"));
            Assert.Equal(ChatTemplateErrorKind.Rejected, ex.Kind);
            Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", ex.Problem);
            Assert.Equal(1, ex.Line);
        }
        // Mistral's first template has no system role at all.
        var system = Assert.Throws<ChatTemplateException>(() => Render(RealTemplates.MistralInstructV02, Conversation, true, "<s>", "</s>"));
        Assert.Equal(ChatTemplateErrorKind.Rejected, system.Kind);
        var tool = Assert.Throws<ChatTemplateException>(() =>
            Render(RealTemplates.MistralInstructV02, [new("user", "a"), new("tool", "b")], true, "<s>", "</s>"));
        Assert.Equal("Only user and assistant roles are supported!", tool.Problem);
    }
}
