using System.Text.Json;
using Strata.Models.Chat;
using Strata.Models.Tests.Tokenization;

namespace Strata.Models.Tests.Chat;

/// <summary>Loading a model's chat template from its folder, in the shapes tokenizer_config.json comes in.</summary>
public sealed class ChatTemplateConfigTests
{
    private static readonly ChatMessage[] Chat = [new("user", "Hello")];

    [Fact]
    public void A_string_template_with_added_token_objects_for_bos_and_eos()
    {
        using var dir = TestModels.NewTempDir();
        dir.Write("tokenizer_config.json", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["add_bos_token"] = true,
            ["bos_token"] = new { __type = "AddedToken", content = "<s>", lstrip = false },
            ["eos_token"] = new { __type = "AddedToken", content = "</s>", lstrip = false },
            ["chat_template"] = RealTemplates.Llama2Chat,
        }));

        var template = ChatTemplate.FromTokenizerConfig(dir.Path);

        Assert.Equal(("<s>", "</s>"), (template.BosToken, template.EosToken));
        Assert.Equal("<s>[INST] Hello [/INST] Hi </s><s>[INST] Again [/INST]",
            template.Render([new("user", "Hello"), new("assistant", "Hi"), new("user", "Again")]));
        Assert.Equal("<b>[INST] Hello [/INST]", template.Render(Chat, new ChatTemplateOptions { BosToken = "<b>" }));
    }

    [Fact]
    public void The_list_form_takes_the_default_entry_or_a_named_one()
    {
        using var dir = TestModels.NewTempDir();
        dir.Write("tokenizer_config.json", """
            {
              "bos_token": "<|begin_of_text|>",
              "eos_token": null,
              "chat_template": [
                {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"},
                {"name": "tool_use", "template": "tools:{{ tools | length }}"}
              ]
            }
            """);

        Assert.Equal("<|begin_of_text|>[user]Hello", ChatTemplate.FromTokenizerConfig(dir.Path).Render(Chat));
        Assert.Equal("tools:2", ChatTemplate.FromTokenizerConfig(dir.Path, "tool_use").Render(Chat,
            new ChatTemplateOptions { Variables = new Dictionary<string, object?> { ["tools"] = new[] { "a", "b" } } }));
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(dir.Path, "rag"));
        Assert.Equal(ChatTemplateErrorKind.Configuration, ex.Kind);
        Assert.Contains("no template named 'rag' (the file has: 'default', 'tool_use')", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_model_without_a_template_says_so_and_names_the_file()
    {
        using var dir = TestModels.NewTempDir();
        string file = dir.Write("tokenizer_config.json", """{"bos_token": "<s>", "model_max_length": 2048}""");

        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(dir.Path));

        Assert.Equal(ChatTemplateErrorKind.Configuration, ex.Kind);
        Assert.Equal(file, ex.Origin);
        Assert.StartsWith(file + ": the model has no chat template", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_tokenizer_config_has_no_template()
    {
        using var dir = TestModels.NewTempDir();

        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(dir.Path));

        Assert.Contains("tokenizer_config.json: file not found, so the model has no chat template", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"chat_template\": ", "invalid JSON")]
    [InlineData("{\"chat_template\": 3}", "chat_template: expected a string or a list of {name, template}")]
    [InlineData("{\"chat_template\": [{\"name\": \"default\"}]}", "chat_template: each entry of the list needs a string 'name' and 'template'")]
    [InlineData("{\"chat_template\": \"x\", \"bos_token\": 5}", "bos_token: expected a string or an object with a string 'content'")]
    public void Malformed_configuration_is_a_configuration_error(string json, string problem)
    {
        using var dir = TestModels.NewTempDir();
        dir.Write("tokenizer_config.json", json);

        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(dir.Path));

        Assert.Equal(ChatTemplateErrorKind.Configuration, ex.Kind);
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_syntax_error_in_the_file_names_the_file_and_field()
    {
        using var dir = TestModels.NewTempDir();
        string file = dir.Write("tokenizer_config.json", """{"chat_template": "{% for m in messages %}\n{{ m.content | nope }}{% endfor %}"}""");

        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(dir.Path));

        Assert.Equal($"{file} (chat_template): line 2, column 16: unknown filter 'nope'", ex.Message);
    }

    [Fact]
    public void Chat_template_jinja_beside_the_config_wins()
    {
        using var dir = TestModels.NewTempDir();
        dir.Write("tokenizer_config.json", """{"chat_template": "old", "eos_token": "<|im_end|>"}""");
        dir.Write("chat_template.jinja", "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}\n");

        Assert.Equal("Hello<|im_end|>", ChatTemplate.FromTokenizerConfig(dir.Path).Render(Chat));
    }
}
